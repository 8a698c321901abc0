//! TLS in `mode http` beyond termination, through the real binary against real
//! peers: `server ... ssl` to an HTTPS nginx (verified against the test CA, a
//! wrong name refused with a 503, kept-alive server connections reused), and
//! the `ssl_fc_*` fetches, `%sslv`/`%sslc` compared with haproxy.
//! Certificates come from `support::tls::Pki` (made with `openssl`).

mod support;

use std::process::Command;
use std::time::Duration;

use support::servers::{haproxy_defaults, Nginx};
use support::tls::{client_cert_curl_args, client_config, https_front, require, Pki};
use support::*;

/// An nginx speaking only HTTPS with the test's a.test certificate; `/conn`
/// answers its connection number, TLS version and the SNI it got.
fn https_nginx(pki: &Pki) -> Nginx {
    let d = pki.dir.path().to_path_buf();
    Nginx::start_with(
        &[("index.html", "hello from https nginx\n")],
        move |port, root| {
            format!(
            "listen 127.0.0.1:{port} ssl; ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate {crt}; ssl_certificate_key {key}; \
             root {root}; keepalive_requests 1000; \
             location /conn {{ return 200 \"$connection $ssl_protocol $ssl_server_name\\n\"; }}",
            crt = d.join("1-a.crt").display(),
            key = d.join("1-a.key").display(),
            root = root.display()
        )
        },
    )
}

fn curl_out(args: &[&str]) -> String {
    let out = Command::new("curl").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `server ... ssl verify required ca-file F sni str(a.test)` in mode http:
/// the body comes back, both requests of one client connection ride one TLS
/// connection to nginx (pooled between them), `verify none` works too, and a
/// server whose certificate does not match the name is refused: 503, logged.
#[test]
fn tls_to_servers_in_mode_http() {
    if !require(&["openssl", "curl", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let nginx = https_nginx(&pki);
    let (good, none, bad) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.ca();
    let n = nginx.port;
    let defaults = haproxy_defaults("http", "2s", "30s");
    let cfg = write_file(
        dir.path(),
        "haproxy.cfg",
        &format!(
            "{defaults}\
             listen good\n  bind 127.0.0.1:{good}\n  server n 127.0.0.1:{n} ssl verify required ca-file {ca} sni str(a.test)\n\
             listen none\n  bind 127.0.0.1:{none}\n  server n 127.0.0.1:{n} ssl verify none\n\
             listen bad\n  bind 127.0.0.1:{bad}\n  server n 127.0.0.1:{n} ssl verify required ca-file {ca} sni str(b.test)\n",
        ),
    );
    let lb = Ringlb::start_file(dir, cfg, &["--shards", "1"]);
    let out = curl_out(&["-sS", &format!("http://127.0.0.1:{good}/index.html")]);
    assert_eq!(out, "hello from https nginx\n", "{}", lb.output());
    // Two requests on one client connection: the second takes the server
    // connection the first left in the pool (the same nginx connection).
    let out = curl_out(&[
        "-sS",
        &format!("http://127.0.0.1:{good}/conn"),
        &format!("http://127.0.0.1:{good}/conn"),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], lines[1], "server connection not reused: {out}");
    assert!(lines[0].ends_with(" TLSv1.3 a.test"), "{out}");
    assert_eq!(
        curl_out(&["-sS", &format!("http://127.0.0.1:{none}/index.html")]),
        "hello from https nginx\n"
    );
    // a.test's certificate, b.test asked for: no connection, a 503.
    let out = curl_out(&[
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{bad}/index.html"),
    ]);
    assert_eq!(out, "503");
    let mut text = String::new();
    let logged = wait_until(Duration::from_secs(5), || {
        text = lb.output();
        text.contains("bad/n: SSL handshake failure")
    });
    assert!(logged, "output:\n{text}");
    assert!(text.contains("not valid for name \"b.test\""), "{text}");
}

/// `curl` over TLS to `port` as `a.test` (or by address: no SNI), with the
/// version and suite pinned so both proxies settle the same ones.
fn curl_tls(pki: &Pki, port: u16, sni: bool, pin: &[&str], path: &str) -> String {
    let resolve = format!("a.test:{port}:127.0.0.1");
    let host = if sni { "a.test" } else { "127.0.0.1" };
    let url = format!("https://{host}:{port}{path}");
    let ca = pki.ca();
    let mut args = vec!["-sS", "--cacert", &ca, "--resolve", &resolve];
    if !sni {
        // The certificate names a.test, not the address.
        args.push("-k");
    }
    args.extend(pin);
    args.extend(["-w", "%{http_code}\n", &url]);
    curl_out(&args)
}

/// `ssl_fc_sni`, `ssl_fc_has_sni`, `ssl_fc_protocol`, `ssl_fc_cipher` in an
/// ACL, `set-header` and a `return ... lf-string`, and `%[ssl_fc_sni]`,
/// `%sslv`, `%sslc` in `log-format`: the same haproxy.cfg run by haproxy
/// (OpenSSL) and ringlb (rustls), the same clients, the same answers and
/// log fields.
#[test]
fn tls_fetches_and_log_fields_match_haproxy() {
    if !require(&["openssl", "curl", "haproxy"]) {
        return;
    }
    let pki = Pki::new();
    let cfg = |port: u16| {
        format!(
            "global\n  log stdout format raw local0\n\
             defaults\n  mode http\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend fe\n  bind 127.0.0.1:{port} ssl crt {crts} alpn http/1.1\n\
             \x20 log-format \"TLSLOG %[ssl_fc_sni] %sslv %sslc %{{+Q}}sslv %ST\"\n\
             \x20 http-request set-header X-Proto %[ssl_fc_protocol]\n\
             \x20 http-request deny deny_status 403 if {{ path /only13 }} !{{ ssl_fc_protocol TLSv1.3 }}\n\
             \x20 http-request return status 200 content-type text/plain lf-string \"sni=%[ssl_fc_sni] has_sni=%[ssl_fc_has_sni] proto=%[ssl_fc_protocol] cipher=%[ssl_fc_cipher] v=%sslv c=%sslc x=%[req.hdr(x-proto)] ssl=%[ssl_fc] alpn=%[ssl_fc_alpn] resumed=%[ssl_fc_is_resumed]\"\n",
            crts = pki.crts()
        )
    };
    let hport = free_port();
    let h = support::servers::Haproxy::start(&cfg(hport), &[hport]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "haproxy.cfg", &cfg(port));
    let lb = Ringlb::start_file(dir, f, &[]);
    let cases: [(bool, &[&str], &str); 5] = [
        (
            true,
            &["--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"],
            "/",
        ),
        (
            true,
            &["--tls13-ciphers", "TLS_AES_128_GCM_SHA256"],
            "/only13",
        ),
        (
            true,
            &[
                "--tlsv1.2",
                "--tls-max",
                "1.2",
                "--ciphers",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
            ],
            "/",
        ),
        (
            true,
            &[
                "--tlsv1.2",
                "--tls-max",
                "1.2",
                "--ciphers",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
            ],
            "/only13",
        ),
        (false, &["--tls13-ciphers", "TLS_AES_256_GCM_SHA384"], "/"),
    ];
    for (sni, pin, path) in cases {
        let theirs = curl_tls(&pki, hport, sni, pin, path);
        let ours = curl_tls(&pki, port, sni, pin, path);
        assert_eq!(ours, theirs, "{pin:?} {path}\n{}", lb.output());
    }
    let log = |text: Vec<String>| -> Vec<String> {
        text.into_iter()
            .filter_map(|l| l.find("TLSLOG ").map(|i| l[i..].to_string()))
            .collect()
    };
    let mut theirs = Vec::new();
    assert!(wait_until(Duration::from_secs(5), || {
        theirs = log(h.output());
        theirs.len() >= cases.len()
    }));
    let mut ours = Vec::new();
    wait_until(Duration::from_secs(5), || {
        ours = log(lb.output().lines().map(String::from).collect());
        ours.len() >= cases.len()
    });
    assert_eq!(ours, theirs);
    // Not only equal: ALPN settled on what the bind offers.
    let ours = curl_tls(&pki, port, true, &[], "/");
    assert!(ours.contains(" alpn=http/1.1 resumed=0"), "{ours}");
    // curl resumes its second connection with the first one's ticket.
    let url = format!("https://a.test:{port}/");
    let ours = curl_tls(&pki, port, true, &["-H", "Connection: close", &url], "/");
    assert!(
        ours.contains("resumed=0") && ours.contains("resumed=1"),
        "{ours}"
    );
}

/// What curl printed on stdout (the body and `-w` fields), not its errors.
fn curl_stdout(args: &[&str]) -> String {
    let out = Command::new("curl").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Client certificates on a bind: `verify optional` with the ignore lists
/// (no certificate, a good one, one from another CA: `ssl_c_used`,
/// `ssl_c_verify`, `ssl_c_s_dn`, `ssl_c_i_dn`) and `verify required` (only
/// the good one gets an answer), against haproxy with the same haproxy.cfg.
#[test]
fn client_certificates_match_haproxy() {
    if !require(&["openssl", "curl", "haproxy"]) {
        return;
    }
    let pki = Pki::new();
    let good = pki.client("alice", "/C=FR/O=ringlb tests/CN=alice", false);
    let other = pki.client("mallory", "/CN=mallory", true);
    let defaults = haproxy_defaults("http", "2s", "10s");
    let cfg = |opt: u16, req: u16| {
        format!(
            "{defaults}\
             frontend opt\n  bind 127.0.0.1:{opt} ssl crt {crts} verify optional ca-file {ca} crt-ignore-err all ca-ignore-err all\n\
             \x20 http-request return status 200 content-type text/plain lf-string \"used=%[ssl_c_used] verify=%[ssl_c_verify] s=%[ssl_c_s_dn] i=%[ssl_c_i_dn] cn=%[ssl_c_s_dn(CN)] o=%[ssl_c_s_dn(O)] ica=%[ssl_c_i_dn(CN,-1)]\"\n\
             frontend req\n  bind 127.0.0.1:{req} ssl crt {crts} verify required ca-file {ca}\n\
             \x20 http-request deny if !{{ ssl_c_used }}\n\
             \x20 http-request return status 200 content-type text/plain lf-string \"used=%[ssl_c_used] verify=%[ssl_c_verify] s=%[ssl_c_s_dn]\"\n",
            crts = pki.crts(),
            ca = pki.ca()
        )
    };
    let (hopt, hreq) = (free_port(), free_port());
    let _h = support::servers::Haproxy::start(&cfg(hopt, hreq), &[hopt, hreq]);
    let (opt, req) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "haproxy.cfg", &cfg(opt, req));
    let lb = Ringlb::start_file(dir, f, &[]);
    let get = |port: u16, cert: Option<&(String, String)>, tls12: bool| {
        let args = client_cert_curl_args(&pki, port, "/", cert, tls12);
        curl_stdout(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    for tls12 in [false, true] {
        for cert in [None, Some(&good), Some(&other)] {
            for (theirs, ours) in [(hopt, opt), (hreq, req)] {
                let want = get(theirs, cert, tls12);
                let got = get(ours, cert, tls12);
                assert_eq!(got, want, "{cert:?} tls1.2 {tls12}\n{}", lb.output());
            }
        }
    }
    // The values themselves, not only their agreement.
    assert_eq!(
        get(opt, Some(&good), false),
        "used=1 verify=0 s=/C=FR/O=ringlb tests/CN=alice i=/CN=ringlb test CA cn=alice o=ringlb tests ica=ringlb test CA 200"
    );
    // OpenSSL's "unable to verify the first certificate": a lone leaf.
    assert!(get(opt, Some(&other), false).starts_with("used=1 verify=21 "));
    assert_eq!(get(req, None, false), " 000");
}

/// Health checks over TLS: `option httpchk` to an `ssl` server goes over
/// TLS by default (an HTTPS nginx stays UP: a plain request would get its
/// 400), a wrong name takes a server DOWN at layer 6, and `check-ssl` on a
/// plain server (no TLS there) fails its handshake: DOWN, L6RSP.
#[test]
fn health_checks_over_tls() {
    if !require(&["openssl", "curl", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let tls = https_nginx(&pki);
    let plain = Nginx::start(&[("index.html", "plain\n")]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.ca();
    let (n, p) = (tls.port, plain.port);
    let fast = "check inter 100ms rise 1 fall 1";
    let defaults = haproxy_defaults("http", "2s", "30s");
    let cfg = write_file(
        dir.path(),
        "haproxy.cfg",
        &format!(
            "{defaults}\
             listen web\n  bind 127.0.0.1:{port}\n  option httpchk GET /index.html\n\
             \x20 server good 127.0.0.1:{n} ssl verify required ca-file {ca} sni str(a.test) {fast}\n\
             \x20 server badname 127.0.0.1:{n} ssl verify required ca-file {ca} sni str(b.test) {fast}\n\
             \x20 server plain 127.0.0.1:{p} check-ssl verify none {fast}\n",
        ),
    );
    let lb = Ringlb::start_file(dir, cfg, &[]);
    let mut text = String::new();
    let down = wait_until(Duration::from_secs(10), || {
        text = lb.output();
        text.contains("Server web/badname is DOWN, reason: Layer6 invalid response")
            && text.contains("Server web/plain is DOWN, reason: Layer6 invalid response")
    });
    assert!(down, "{text}");
    assert!(text.contains("SSL handshake failure"), "{text}");
    assert!(!text.contains("Server web/good is DOWN"), "{text}");
    // Only the good server is left to take requests.
    for _ in 0..4 {
        let out = curl_out(&["-sS", &format!("http://127.0.0.1:{port}/index.html")]);
        assert_eq!(out, "hello from https nginx\n", "{}", lb.output());
    }
}

/// Clients that reset their connection right after the handshake (HTTPS,
/// mode http): each session ends at once, its descriptors closed, not held
/// until a timeout; the process then serves as before. (A regression of the
/// socket-pair bridge this session no longer has: the bridge's end of the
/// pair outlived it, so the HTTP session waited for `timeout client`.)
#[test]
fn handshake_then_reset_leaves_no_descriptor_behind() {
    if !require(&["openssl", "curl", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let nginx = Nginx::start(&[("index.html", "still here\n")]);
    let port = free_port();
    let cfg = https_front(port, &pki, nginx.port).build();
    let lb = Ringlb::start(&cfg, &["--shards", "1"]);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", lb.pid()))
            .unwrap()
            .count()
    };
    let before = fds();
    let config = client_config(&pki);
    for _ in 0..50 {
        let mut conn =
            rustls::ClientConnection::new(config.clone(), "a.test".try_into().unwrap()).unwrap();
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).unwrap();
        }
        let sock = ringlb::sys::socket::Socket::from(std::os::fd::OwnedFd::from(tcp));
        sock.set_reset_on_close().unwrap();
    }
    let mut now = 0;
    let drained = wait_until(Duration::from_secs(5), || {
        now = fds();
        now <= before
    });
    assert!(drained, "{before} descriptors before, {now} after");
    let out = curl_out(&[
        "-sS",
        "--cacert",
        &pki.ca(),
        "--resolve",
        &format!("a.test:{port}:127.0.0.1"),
        &format!("https://a.test:{port}/index.html"),
    ]);
    assert_eq!(out, "still here\n");
}

/// A client that sends `close_notify` in the same flight as its Finished
/// (what `ringlb-bench handshake` does: the TLS 1.3 client is done before the
/// server has read its Finished) has its session ended at once, with the
/// proxy's own close_notify and FIN. A regression: the HTTP session waited for
/// the socket to become readable, but rustls had already read the close_notify,
/// so the session lived until `timeout client`.
#[test]
fn close_notify_with_the_finished_ends_the_session() {
    use std::io::Read;
    if !require(&["openssl", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let nginx = Nginx::start(&[("index.html", "page\n")]);
    let port = free_port();
    let cfg = https_front(port, &pki, nginx.port).build();
    let _lb = Ringlb::start(&cfg, &["--shards", "1"]);
    let config = client_config(&pki);
    for _ in 0..20 {
        let mut conn =
            rustls::ClientConnection::new(config.clone(), "a.test".try_into().unwrap()).unwrap();
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Read the server's flight, then queue close_notify behind the
        // Finished before writing either: one write carries both.
        let mut closed = false;
        // A stalled session ends in the 10 s read timeout (a panic below),
        // not in the proxy's close.
        let eof = loop {
            if !conn.is_handshaking() && !closed {
                conn.send_close_notify();
                closed = true;
            }
            while conn.wants_write() {
                conn.write_tls(&mut tcp).unwrap();
            }
            match conn.read_tls(&mut tcp) {
                Ok(0) => break true,
                Ok(_) => {
                    conn.process_new_packets().unwrap();
                }
                Err(e) => panic!("waiting for the proxy's close: {e}"),
            }
        };
        assert!(eof && closed);
        let mut rest = Vec::new();
        assert_eq!(tcp.read_to_end(&mut rest).unwrap(), 0);
    }
}

/// `server ... ssl crt FILE`: a client certificate for a server that asks
/// for one (nginx with `ssl_verify_client on`): with it, the page; without
/// it, nginx's 400.
#[test]
fn client_certificate_to_a_server() {
    if !require(&["openssl", "curl", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let (crt, key) = pki.client("proxy", "/CN=ringlb proxy", false);
    let pem = pki.dir.path().join("proxy.pem");
    let mut bytes = std::fs::read(&crt).unwrap();
    bytes.extend(std::fs::read(&key).unwrap());
    std::fs::write(&pem, bytes).unwrap();
    let d = pki.dir.path().to_path_buf();
    let ca = pki.ca();
    let nginx = Nginx::start_with(&[("index.html", "certified\n")], move |port, root| {
        format!(
            "listen 127.0.0.1:{port} ssl; ssl_certificate {}; ssl_certificate_key {}; \
             ssl_verify_client on; ssl_client_certificate {ca}; root {};",
            d.join("1-a.crt").display(),
            d.join("1-a.key").display(),
            root.display()
        )
    });
    let (with, without) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let (n, ca) = (nginx.port, pki.ca());
    let defaults = haproxy_defaults("http", "2s", "30s");
    let cfg = write_file(
        dir.path(),
        "haproxy.cfg",
        &format!(
            "{defaults}\
             listen with\n  bind 127.0.0.1:{with}\n  server n 127.0.0.1:{n} ssl verify required ca-file {ca} sni str(a.test) crt {}\n\
             listen without\n  bind 127.0.0.1:{without}\n  server n 127.0.0.1:{n} ssl verify required ca-file {ca} sni str(a.test)\n",
            pem.display()
        ),
    );
    let lb = Ringlb::start_file(dir, cfg, &[]);
    let get = |port: u16| {
        curl_out(&[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{port}/index.html"),
        ])
    };
    assert_eq!(get(with), "200", "{}", lb.output());
    assert_eq!(get(without), "400");
}

/// Reads one `Content-Length` response from `r`: its body as text.
fn body_of(r: &mut impl std::io::BufRead) -> String {
    let mut len = 0;
    let mut status = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed in a head");
        if status.is_empty() {
            status = line.clone();
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    format!("{}{}", status.trim_end(), String::from_utf8_lossy(&body))
}

/// `server ... ssl verify required ca-file F sni req.hdr(host)`: each
/// request's server connection sends the request's Host as SNI, and the
/// certificate is checked against it (nginx serves a.test and b.test with
/// their own certificates); a pooled connection only serves requests for
/// the name it was made with; a name no certificate carries is refused (503).
/// A per-request expression in mode tcp, or an unknown fetch, is a config
/// error naming the server.
#[test]
fn sni_from_the_request_picks_certificate_and_pooled_connection() {
    if !require(&["openssl", "nginx"]) {
        return;
    }
    use std::io::{BufReader, Write};
    let pki = Pki::new();
    let d = pki.dir.path().to_path_buf();
    let nginx = Nginx::start_with(&[], move |port, root| {
        let site = |name: &str, file: &str| {
            format!(
                "listen 127.0.0.1:{port} ssl; server_name {name}; root {root}; keepalive_requests 1000; \
                 ssl_certificate {crt}; ssl_certificate_key {key}; \
                 location /conn {{ return 200 \" $connection $ssl_server_name\\n\"; }}",
                crt = d.join(format!("{file}.crt")).display(),
                key = d.join(format!("{file}.key")).display(),
                root = root.display()
            )
        };
        // Two server blocks: the closing and opening braces join them.
        format!(
            "{} }} server {{ {}",
            site("a.test", "1-a"),
            site("b.test", "2-b")
        )
    });
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let server = format!(
        "server n 127.0.0.1:{} ssl verify required ca-file {} sni req.hdr(host)",
        nginx.port,
        pki.ca()
    );
    let defaults = haproxy_defaults("http", "2s", "30s");
    let cfg = write_file(
        dir.path(),
        "haproxy.cfg",
        &format!(
            "{defaults}\
             listen dyn\n  bind 127.0.0.1:{port}\n  {server}\n"
        ),
    );
    let lb = Ringlb::start_file(dir, cfg, &["--shards", "1"]);
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut ask = |host: &str| {
        write!(w, "GET /conn HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        body_of(&mut r)
    };
    let a1 = ask("a.test");
    let a2 = ask("a.test");
    let b = ask("b.test");
    let a3 = ask("a.test");
    let conn = |s: &str| -> String {
        assert!(s.starts_with("HTTP/1.1 200"), "{s}\n{}", lb.output());
        let words: Vec<&str> = s.split_whitespace().collect();
        words[words.len() - 2].to_string()
    };
    assert!(
        a1.ends_with(" a.test\n") && b.ends_with(" b.test\n"),
        "{a1}{b}"
    );
    assert_eq!(conn(&a1), conn(&a2), "a.test's connection not reused");
    assert_ne!(conn(&b), conn(&a1), "b.test rode a.test's connection");
    assert_eq!(conn(&a3), conn(&a1), "a.test's connection lost to b.test");
    // No certificate names c.test: the handshake is refused.
    let c = ask("c.test");
    assert!(c.starts_with("HTTP/1.1 503"), "{c}");
    let mut text = String::new();
    let logged = wait_until(Duration::from_secs(5), || {
        text = lb.output();
        text.contains("dyn/n: SSL handshake failure")
    });
    assert!(logged, "{text}");
    assert!(text.contains("not valid for name \"c.test\""), "{text}");
    // Refused at check: an expression in mode tcp, an unknown fetch.
    for (mode, sni, want) in [
        ("tcp", "req.hdr(host)", "in mode tcp use a fixed name"),
        ("http", "req.nosuch(host)", "sni req.nosuch(host)"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let f = write_file(
            dir.path(),
            "bad.cfg",
            &format!(
                "defaults\n  mode {mode}\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
                 listen dyn\n  bind 127.0.0.1:{port}\n  server n 127.0.0.1:1 ssl verify none sni {sni}\n"
            ),
        );
        let (code, _, err) = ringlb_cmd(&["check", "-f", f.to_str().unwrap()]);
        assert_ne!(code, 0, "{err}");
        assert!(err.contains(want) && err.contains("server \"n\""), "{err}");
        assert!(err.contains("bad.cfg:8:"), "{err}");
    }
}
