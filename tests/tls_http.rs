//! TLS in `mode http` beyond termination, through the real binary against real
//! peers: `server ... ssl` to an HTTPS nginx (verified against the test CA, a
//! wrong name refused with a 503, kept-alive server connections reused).
//! Certificates come from `support::tls::Pki` (made with `openssl`).

mod support;

use std::process::Command;
use std::time::Duration;

use support::servers::Nginx;
use support::tls::{require, Pki};
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
    let cfg = write_file(
        dir.path(),
        "haproxy.cfg",
        &format!(
            "defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
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
