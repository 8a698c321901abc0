//! TLS termination in TCP mode through the real binary, against real peers:
//! `redis-cli --tls` to a plain `redis-server`, `openssl s_client` seeing the
//! certificate SNI picks (two names, a wildcard, the default), `curl` over TLS
//! 1.2 and 1.3 to a plain nginx, 256 MiB byte-exact both ways (`socat`),
//! resumption across two shards, a client that sends garbage or stalls (closed,
//! counted, logged; others unaffected), and config errors naming the file.
//! Certificates come from `support::tls::Pki` (made with `openssl` in the test).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::config::q;
use support::servers::{haproxy_defaults, Nginx, RedisServer};
use support::tls::{client_config, https_front, require, run, tls_tcp_front, Pki};
use support::*;

/// A TCP-mode listen section with TLS on its bind (`extra`: more `ssl` keys,
/// each starting with `, `).
fn tls_front(port: u16, crt: &str, server: &str, extra: &str) -> String {
    tls_tcp_front(port, crt, server, extra).build()
}

fn redis_cli(port: u16, ca: &str, sni: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            ca,
            "--sni",
            sni,
            "-p",
            &port.to_string(),
        ])
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

#[test]
fn redis_cli_over_tls_to_a_plain_redis() {
    if !require(&["openssl", "redis-cli", "redis-server", "redis-benchmark"]) {
        return;
    }
    let pki = Pki::new();
    let redis = RedisServer::start(&[]);
    let port = free_port();
    let cfg = tls_front(port, &pki.crts(), &format!("127.0.0.1:{}", redis.port), "");
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    assert_eq!(redis_cli(port, &pki.ca(), "a.test", &["PING"]), "PONG");
    assert_eq!(
        redis_cli(port, &pki.ca(), "a.test", &["SET", "tls-key", "over tls"]),
        "OK"
    );
    assert_eq!(
        redis_cli(port, &pki.ca(), "b.test", &["GET", "tls-key"]),
        "over tls"
    );
    // The plain port of redis saw it too: the bytes went through decrypted.
    assert_eq!(
        support::servers::redis_cli(redis.port, &["GET", "tls-key"]),
        "over tls"
    );
    // 50 TLS clients at once, pipelined: every request answered.
    let tls = ["--tls", "--cacert", &pki.ca(), "--sni", "a.test"];
    support::servers::redis_benchmark(port, &tls);
    let processed = redis.commands_processed();
    assert!(processed >= 40_000, "redis processed only {processed}");
}

/// What `openssl s_client` reports for one handshake (`sni` None: no SNI).
fn s_client(port: u16, ca: &str, sni: Option<&str>, extra: &[&str]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-CAfile",
        ca,
    ]);
    match sni {
        Some(n) => cmd.args(["-servername", n]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd.args(extra).stdin(Stdio::null()).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn subject_cn(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("subject="))
        .map(|s| s.rsplit("CN = ").next().unwrap_or(s).trim().to_string())
        .unwrap_or_else(|| panic!("no subject in:\n{out}"))
}

#[test]
fn sni_picks_exact_wildcard_and_default_certificates_from_haproxy_cfg() {
    if !require(&["openssl"]) {
        return;
    }
    let pki = Pki::new();
    let echo = TestServer::start("echo", Behaviour::Echo);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let defaults = haproxy_defaults("tcp", "2s", "30s");
    let cfg = write_file(
        dir.path(),
        "haproxy.cfg",
        &format!(
            // Debian's default global TLS lines: a base for relative paths and
            // defaults every bind takes (DHE is skipped with a warning).
            "global\n  crt-base {}\n\
             ssl-default-bind-ciphers DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305\n\
             ssl-default-bind-ciphersuites TLS_CHACHA20_POLY1305_SHA256\n\
             ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets\n\
             {defaults}\
             frontend tls\n  bind 127.0.0.1:{port} ssl crt crts alpn h2,http/1.1\n  default_backend be\n\
             backend be\n  server s1 {}\n",
            pki.dir.path().display(),
            echo.addr
        ),
    );
    let lb = Ringlb::start_file(dir, cfg, &[]);
    let out = s_client(port, &pki.ca(), Some("a.test"), &[]);
    assert!(
        out.contains("Cipher is TLS_CHACHA20_POLY1305_SHA256"),
        "{out}"
    );
    let out = s_client(port, &pki.ca(), Some("a.test"), &["-tls1_2"]);
    assert!(
        out.contains("Cipher is ECDHE-ECDSA-CHACHA20-POLY1305"),
        "{out}"
    );
    let text = lb.output();
    assert!(
        text.contains("ciphers: DHE-RSA-AES128-GCM-SHA256 not offered"),
        "{text}"
    );
    for (sni, cn) in [
        (Some("a.test"), "a.test"),
        (Some("b.test"), "b.test"),
        (Some("B.Test"), "b.test"),
        (Some("x.wild.test"), "*.wild.test"),
        // A wildcard covers one label only: the default then.
        (Some("y.x.wild.test"), "a.test"),
        (Some("unknown.test"), "a.test"),
        (None, "a.test"),
    ] {
        let out = s_client(port, &pki.ca(), sni, &[]);
        assert_eq!(subject_cn(&out), cn, "SNI {sni:?}:\n{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    }
    // ALPN: http/1.1 is chosen; h2 is not offered (no HTTP/2 yet).
    let out = s_client(port, &pki.ca(), Some("a.test"), &["-alpn", "h2,http/1.1"]);
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
    let out = s_client(port, &pki.ca(), Some("a.test"), &["-alpn", "h2"]);
    assert!(!out.contains("ALPN protocol: h2"), "{out}");
}

/// `crt-list FILE`: certificates with SNI filters, as HAProxy reads the
/// file: filters replace a certificate's own names
/// and `!name` keeps a name off a wildcard. The same list, checked against
/// haproxy when it is installed: the same certificate for every name.
#[test]
fn crt_list_with_sni_filters() {
    if !require(&["openssl"]) {
        return;
    }
    let pki = Pki::new();
    let echo = TestServer::start("echo", Behaviour::Echo);
    let crts = pki.crts();
    let list = write_file(
        pki.dir.path(),
        "certs.list",
        &format!(
            "# default first\n{crts}/1-a.pem\n\n{crts}/2-b.pem other.test   # b.test's cert for other.test only\n\
             {crts}/3-w.pem [ ] *.wild.test !secret.wild.test\n"
        ),
    );
    let defaults = haproxy_defaults("tcp", "2s", "30s");
    let cfg = |port: u16| {
        format!(
            "{defaults}\
             frontend tls\n  bind 127.0.0.1:{port} ssl crt-list {}\n  default_backend be\n\
             backend be\n  server s1 {}\n",
            list.display(),
            echo.addr
        )
    };
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "haproxy.cfg", &cfg(port));
    let _lb = Ringlb::start_file(dir, f, &[]);
    let cases = [
        ("a.test", "a.test"),
        ("other.test", "b.test"),
        // b.test is no longer among its certificate's names: the default.
        ("b.test", "a.test"),
        ("x.wild.test", "*.wild.test"),
        ("secret.wild.test", "a.test"),
    ];
    for (sni, cn) in cases {
        let out = s_client(port, &pki.ca(), Some(sni), &[]);
        assert_eq!(subject_cn(&out), cn, "SNI {sni}:\n{out}");
    }
    if require(&["haproxy"]) {
        let hport = free_port();
        let _h = support::servers::Haproxy::start(&cfg(hport), &[hport]);
        for (sni, _) in cases {
            let theirs = subject_cn(&s_client(hport, &pki.ca(), Some(sni), &[]));
            let ours = subject_cn(&s_client(port, &pki.ca(), Some(sni), &[]));
            assert_eq!(ours, theirs, "SNI {sni}");
        }
    }
}

#[test]
fn curl_over_tls_1_2_and_1_3_to_a_plain_nginx_and_a_64_mib_download() {
    if !require(&["openssl", "curl", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let nginx = Nginx::start(&[("index.html", "hello over tls\n")]);
    let big = pattern(14, 64 << 20);
    std::fs::write(nginx.root.join("big.bin"), &big).unwrap();
    let port = free_port();
    let cfg = tls_front(port, &pki.crts(), &format!("127.0.0.1:{}", nginx.port), "");
    let lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let resolve = format!("a.test:{port}:127.0.0.1");
    let url = format!("https://a.test:{port}/index.html");
    for (args, version) in [
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
        (&["--tlsv1.3"][..], "TLSv1.3"),
    ] {
        let out = Command::new("curl")
            .args(["-sS", "-v", "--cacert", &pki.ca(), "--resolve", &resolve])
            .args(args)
            .args(["-w", "\n%{http_code}", &url])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stdout, "hello over tls\n\n200", "{stderr}\n{}", lb.output());
        assert!(
            stderr.contains(&format!("SSL connection using {version}")),
            "{stderr}"
        );
    }
    let file = lb.dir.path().join("big.out");
    assert_downloads_big(&pki, port, &[], &file, &big, "64 MiB download");
    // HTTP/1.0: nginx closes right after the body, while a slow client still
    // has megabytes to read; every record and the close_notify must follow.
    let slow = ["--http1.0", "--limit-rate", "24M", "--max-time", "20"];
    assert_downloads_big(&pki, port, &slow, &file, &big, "64 MiB slow download");
}

/// Downloads `https://a.test:PORT/big.bin` with `curl -sS` (trusting the test
/// CA, `a.test` resolved to loopback, `extra` options) into `file`; asserts
/// that curl succeeded and the file is `big`.
fn assert_downloads_big(pki: &Pki, port: u16, extra: &[&str], file: &Path, big: &[u8], what: &str) {
    let out = Command::new("curl")
        .arg("-sS")
        .args(extra)
        .args(["--cacert", &pki.ca(), "--resolve"])
        .arg(format!("a.test:{port}:127.0.0.1"))
        .arg("-o")
        .arg(file)
        .arg(format!("https://a.test:{port}/big.bin"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = std::fs::read(file).unwrap();
    assert_eq!(got.len(), big.len(), "{what}");
    assert!(got == big, "{what} differs");
}

#[test]
fn two_hundred_fifty_six_mib_byte_exact_both_ways_over_tls() {
    if !require(&["openssl", "socat"]) {
        return;
    }
    let pki = Pki::new();
    let echo = TestServer::start("echo", Behaviour::Echo);
    let port = free_port();
    let cfg = tls_front(port, &pki.crts(), &echo.addr.to_string(), "");
    let lb = Ringlb::start(&cfg, &[]);
    let data = pattern(3, 256 << 20);
    let input = lb.dir.path().join("in.bin");
    std::fs::write(&input, &data).unwrap();
    // socat sends the file, then close_notify and FIN; the echo server closes
    // after our FIN; socat exits when the TLS side closes.
    let out = Command::new("socat")
        .args(["-t", "20", "-T", "20", "-b", "65536", "-"])
        .arg(format!(
            "OPENSSL:127.0.0.1:{port},cafile={},commonname=a.test,snihost=a.test,rcvbuf=16384",
            pki.ca()
        ))
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "socat: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        lb.output()
    );
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "256 MiB echo differs");
}

/// A long-lived `openssl s_client` session to redis: send a line, read one.
struct Session {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Session {
    fn open(port: u16, ca: &str, sess_out: Option<&Path>) -> Session {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "a.test",
            "-CAfile",
            ca,
        ]);
        if let Some(p) = sess_out {
            cmd.arg("-sess_out").arg(p);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Session { child, out }
    }

    fn ask(&mut self, line: &str) -> String {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        let mut reply = String::new();
        self.out.read_line(&mut reply).unwrap();
        reply.trim().to_string()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until EOF or reset; returns the bytes and how long it took.
fn read_to_close(c: &mut TcpStream) -> (Vec<u8>, Duration) {
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("not closed: {e}"),
        }
    }
    (got, t.elapsed())
}

#[test]
fn garbage_and_stalled_handshakes_are_closed_counted_logged_and_harm_no_one() {
    if !require(&["openssl", "redis-server", "socat"]) {
        return;
    }
    let pki = Pki::new();
    let redis = RedisServer::start(&[]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let log = dir.path().join("events.log");
    let cfg = Cfg::new()
        .admin_socket(sock.display())
        .log_with(log.display(), r#"facility = "local0", level = "info""#)
        .mode("tcp")
        .timeouts("2s", "1500ms", "30s")
        .listen(
            Proxy::new("tls")
                .bind_with(
                    format!("127.0.0.1:{port}"),
                    &format!("ssl = {{ crt = {} }}", q(pki.crts())),
                )
                .server("s1", format!("127.0.0.1:{}", redis.port)),
        )
        .build();
    let lb = Ringlb::start(&cfg, &["--shards", "1"]);
    let mut good = Session::open(port, &pki.ca(), None);
    assert_eq!(good.ask("PING"), "+PONG");

    // Plain HTTP where a ClientHello should be: an alert at most, then close.
    let mut bad = TcpStream::connect(("127.0.0.1", port)).unwrap();
    bad.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let (got, _) = read_to_close(&mut bad);
    assert!(got.is_empty() || got[0] == 0x15, "not an alert: {got:?}");
    assert_eq!(good.ask("SET after-garbage yes"), "+OK");
    assert_eq!(good.ask("GET after-garbage"), "$3");

    // A client that connects and says nothing: cut by `timeout client`.
    drop(good);
    let mut stall = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (got, took) = read_to_close(&mut stall);
    assert!(got.is_empty(), "{got:?}");
    assert!(
        took >= Duration::from_millis(1300) && took < Duration::from_secs(6),
        "stalled handshake closed after {took:?}"
    );
    let mut again = Session::open(port, &pki.ca(), None);
    assert_eq!(again.ask("PING"), "+PONG");

    // Counted (the frontend's ereq) and logged.
    let ereq = || {
        let out = Command::new("socat")
            .arg("-")
            .arg(format!("UNIX-CONNECT:{}", sock.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(b"show stat\n")?;
                c.wait_with_output()
            })
            .unwrap();
        let csv = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = csv.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or("")
            .trim_start_matches("# ")
            .split(',')
            .map(String::from)
            .collect();
        let i = header.iter().position(|h| h == "ereq")?;
        lines
            .map(|l| l.split(',').map(String::from).collect::<Vec<_>>())
            .find(|c| c.len() > i && c[0] == "tls" && c[1] == "FRONTEND")
            .map(|c| c[i].clone())
    };
    let mut seen = None;
    let counted = wait_until(Duration::from_secs(5), || {
        seen = ereq();
        seen.as_deref() == Some("2")
    });
    assert!(counted, "ereq {seen:?}");
    let mut text = String::new();
    let logged = wait_until(Duration::from_secs(5), || {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("SSL handshake failure") && text.contains("timeout during SSL handshake")
    });
    assert!(logged, "log:\n{text}\n{}", lb.output());
}

#[test]
fn tickets_resume_on_any_of_two_shards() {
    if !require(&["openssl", "redis-server"]) {
        return;
    }
    let pki = Pki::new();
    let redis = RedisServer::start(&[]);
    let port = free_port();
    let cfg = tls_front(port, &pki.crts(), &format!("127.0.0.1:{}", redis.port), "");
    let lb = Ringlb::start(&cfg, &["--shards", "2"]);
    // TLS 1.2: `-reconnect` resumes five times with the first session's ticket.
    let out = s_client(port, &pki.ca(), Some("a.test"), &["-tls1_2", "-reconnect"]);
    let reused = out.lines().filter(|l| l.starts_with("Reused,")).count();
    assert_eq!(reused, 5, "{out}");
    // TLS 1.3: tickets come after the handshake, which `-reconnect` does not
    // wait for; take one from a session that has exchanged data, then resume
    // with it on fresh connections (spread over both shards by SO_REUSEPORT).
    let sess = lb.dir.path().join("sess.pem");
    {
        let mut s = Session::open(port, &pki.ca(), Some(&sess));
        assert_eq!(s.ask("PING"), "+PONG");
    }
    assert!(wait_until(Duration::from_secs(5), || sess.exists()));
    let sess_arg = sess.display().to_string();
    for _ in 0..8 {
        let out = s_client(port, &pki.ca(), Some("a.test"), &["-sess_in", &sess_arg]);
        assert!(out.contains("Reused, TLSv1.3"), "{out}");
    }
}

#[test]
fn bad_certificates_are_config_errors_naming_the_file() {
    if !require(&["openssl"]) {
        return;
    }
    let pki = Pki::new();
    let d = pki.dir.path();
    // The key of b with the certificate of a.
    let mut mixed = std::fs::read(d.join("1-a.crt")).unwrap();
    mixed.extend(std::fs::read(d.join("2-b.key")).unwrap());
    std::fs::write(d.join("mixed.pem"), mixed).unwrap();
    std::fs::write(
        d.join("nokey.pem"),
        std::fs::read(d.join("1-a.crt")).unwrap(),
    )
    .unwrap();
    std::fs::write(d.join("junk.pem"), "not a certificate\n").unwrap();
    let check = |crt: &str, extra: &str| {
        let dir = tempfile::tempdir().unwrap();
        let f = write_file(
            dir.path(),
            "t.toml",
            &tls_front(1, crt, "127.0.0.1:2", extra),
        );
        ringlb_cmd(&["check", "-f", f.to_str().unwrap()])
    };
    for (file, why) in [
        ("mixed.pem", "does not match"),
        ("nokey.pem", "no private key"),
        ("junk.pem", "no certificate"),
        ("missing.pem", "No such file"),
    ] {
        let path = d.join(file).display().to_string();
        let (code, out, err) = check(&path, "");
        assert_eq!(code, 1, "{file}: {out}{err}");
        assert!(err.contains(&path) && err.contains(why), "{file}: {err}");
    }
    let (code, _, err) = check(&pki.crts(), r#", ciphers = "AES128-SHA""#);
    assert_eq!(code, 1);
    assert!(err.contains("AES128-SHA"), "{err}");
    let (code, _, err) = check(&pki.crts(), r#", ssl-min-ver = "TLSv1.0""#);
    assert_eq!(code, 1);
    assert!(err.contains("TLSv1.0"), "{err}");
    // Nothing is bound when a certificate is bad.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(
        dir.path(),
        "t.toml",
        &tls_front(
            port,
            &d.join("mixed.pem").display().to_string(),
            "127.0.0.1:2",
            "",
        ),
    );
    let out = Command::new(ringlb_bin())
        .args(["run", "-f", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());

    // An expired certificate is a warning, not an error.
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ncopy_extensions = copy\ndatabase = index.txt\n\
         new_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n",
    )
    .unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("serial"), "01\n").unwrap();
    run(
        d,
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            "1-a.key",
            "-subj",
            "/CN=old.test",
            "-addext",
            "subjectAltName=DNS:old.test",
            "-out",
            "old.csr",
        ],
    );
    run(
        d,
        "openssl",
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.crt",
            "-keyfile",
            "ca.key",
            "-in",
            "old.csr",
            "-out",
            "old.crt",
            "-notext",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
        ],
    );
    let mut old = std::fs::read(d.join("old.crt")).unwrap();
    old.extend(std::fs::read(d.join("1-a.key")).unwrap());
    std::fs::write(d.join("old.pem"), old).unwrap();
    let path = d.join("old.pem").display().to_string();
    let (code, out, err) = check(&path, "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        (out.clone() + &err).contains(&format!("crt {path}: the certificate has expired")),
        "{out}{err}"
    );
    let _ = pki.pem("1-a.pem");
}

/// `server ... ssl`: to a `redis-server` speaking only TLS on its TLS port.
#[test]
fn tls_to_servers_verified_against_the_ca_and_a_wrong_name_refused() {
    if !require(&["openssl", "redis-cli", "redis-server"]) {
        return;
    }
    let pki = Pki::new();
    let d = pki.dir.path();
    let tls_port = free_port();
    let _redis = RedisServer::start(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        d.join("1-a.crt").to_str().unwrap(),
        "--tls-key-file",
        d.join("1-a.key").to_str().unwrap(),
        "--tls-auth-clients",
        "no",
    ]);
    let (good, bad_name, no_verify, no_sni, both) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.ca();
    let defaults = haproxy_defaults("tcp", "2s", "30s");
    let cfg = write_file(
        dir.path(),
        "haproxy.cfg",
        &format!(
            "{defaults}\
             listen good\n  bind 127.0.0.1:{good}\n  server r 127.0.0.1:{tls_port} ssl verify required ca-file {ca} sni str(a.test)\n\
             listen bad_name\n  bind 127.0.0.1:{bad_name}\n  server r 127.0.0.1:{tls_port} ssl verify required ca-file {ca} sni str(b.test)\n\
             listen no_verify\n  bind 127.0.0.1:{no_verify}\n  server r 127.0.0.1:{tls_port} ssl verify none\n\
             listen no_sni\n  bind 127.0.0.1:{no_sni}\n  server r 127.0.0.1:{tls_port} ssl ca-file {ca}\n\
             listen both\n  bind 127.0.0.1:{both} ssl crt {}\n  server r 127.0.0.1:{tls_port} ssl verify required ca-file {ca} sni str(a.test)\n",
            pki.crts(),
        ),
    );
    let lb = Ringlb::start_file(dir, cfg, &["--shards", "2"]);
    let plain = support::servers::redis_cli;
    assert_eq!(
        plain(good, &["SET", "k", "through tls"]),
        "OK",
        "{}",
        lb.output()
    );
    assert_eq!(plain(good, &["GET", "k"]), "through tls");
    assert_eq!(plain(no_verify, &["PING"]), "PONG");
    // No SNI and no verifyhost: the chain is checked, the name is not (HAProxy).
    assert_eq!(plain(no_sni, &["PING"]), "PONG");
    // TLS on both sides.
    assert_eq!(redis_cli(both, &ca, "a.test", &["GET", "k"]), "through tls");
    // The certificate is for a.test, not b.test: no session.
    let out = plain(bad_name, &["PING"]);
    assert!(!out.contains("PONG"), "{out}");
    // With no log target, the warning goes to stderr (as HAProxy's alerts).
    let mut text = String::new();
    let logged = wait_until(Duration::from_secs(5), || {
        text = lb.output();
        text.contains("bad_name/r: SSL handshake failure")
    });
    assert!(logged, "output:\n{text}");
    assert!(text.contains("not valid for name \"b.test\""), "{text}");
}

/// `accept-proxy` with `ssl`: the PROXY header comes first, then the TLS
/// handshake (as HAProxy reads them); curl sends both.
#[test]
fn a_proxy_header_before_the_handshake() {
    if !require(&["openssl", "curl", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let nginx = Nginx::start(&[("index.html", "behind proxy and tls\n")]);
    let port = free_port();
    let cfg = Cfg::new()
        .mode("tcp")
        .timeouts("2s", "30s", "30s")
        .listen(
            Proxy::new("tls")
                .bind_with(
                    format!("127.0.0.1:{port}"),
                    &format!("accept-proxy = true, ssl = {{ crt = {} }}", q(pki.crts())),
                )
                .server("s1", format!("127.0.0.1:{}", nginx.port)),
        )
        .build();
    let lb = Ringlb::start(&cfg, &[]);
    let out = Command::new("curl")
        .args([
            "-sS",
            "--haproxy-protocol",
            "--cacert",
            &pki.ca(),
            "--resolve",
        ])
        .arg(format!("a.test:{port}:127.0.0.1"))
        .arg(format!("https://a.test:{port}/index.html"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "behind proxy and tls\n",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        lb.output()
    );
    // Without the header: closed before any TLS.
    let out = Command::new("curl")
        .args(["-sS", "--cacert", &pki.ca(), "--resolve"])
        .arg(format!("a.test:{port}:127.0.0.1"))
        .arg(format!("https://a.test:{port}/index.html"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `mode http` behind `bind ... ssl`: HTTPS in front of a plain nginx, two
/// requests on one kept-alive TLS connection, and 64 MiB byte-exact.
#[test]
fn https_in_mode_http_to_a_plain_nginx() {
    if !require(&["openssl", "curl", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let nginx = Nginx::start(&[("index.html", "hello https\n"), ("two.html", "second\n")]);
    let big = pattern(21, 64 << 20);
    std::fs::write(nginx.root.join("big.bin"), &big).unwrap();
    let port = free_port();
    let cfg = Cfg::new()
        .mode("http")
        .timeouts("2s", "30s", "30s")
        .listen(
            Proxy::new("https")
                .bind_with(
                    format!("127.0.0.1:{port}"),
                    &format!(
                        "ssl = {{ crt = {}, alpn = \"h2,http/1.1\" }}",
                        q(pki.crts())
                    ),
                )
                .server("s1", format!("127.0.0.1:{}", nginx.port)),
        )
        .build();
    let lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let resolve = format!("a.test:{port}:127.0.0.1");
    let out = Command::new("curl")
        .args(["-sS", "-v", "--cacert", &pki.ca(), "--resolve", &resolve])
        .args(["-w", "%{http_code}\n"])
        .arg(format!("https://a.test:{port}/index.html"))
        .arg(format!("https://a.test:{port}/two.html"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout,
        "hello https\n200\nsecond\n200\n",
        "{stderr}\n{}",
        lb.output()
    );
    assert!(
        stderr.contains("ALPN: server accepted http/1.1")
            || stderr.contains("ALPN, server accepted to use http/1.1"),
        "{stderr}"
    );
    assert!(stderr.contains("Re-using existing connection"), "{stderr}");
    let file = lb.dir.path().join("big.out");
    assert_downloads_big(&pki, port, &[], &file, &big, "64 MiB over HTTPS");
}

/// `ssl_fc` in a `use_backend` condition: the same frontend on a plain and a
/// TLS bind routes HTTPS to one backend and HTTP to the other; `dst_port`
/// sees the TLS listener's port.
#[test]
fn ssl_fc_and_dst_port_route_https_requests() {
    if !require(&["openssl", "curl", "nginx"]) {
        return;
    }
    let pki = Pki::new();
    let plain_srv = Nginx::start(&[("index.html", "plain backend\n")]);
    let tls_srv = Nginx::start(&[("index.html", "tls backend\n")]);
    let (http_port, https_port) = (free_port(), free_port());
    let cfg = Cfg::new()
        .mode("http")
        .timeouts("2s", "30s", "30s")
        .frontend(
            Proxy::new("web")
                .port(http_port)
                .bind_with(
                    format!("127.0.0.1:{https_port}"),
                    &format!("ssl = {{ crt = {} }}", q(pki.crts())),
                )
                .extra(format!(
                    "use-backend = [{{ backend = \"secure\", if = \"{{ ssl_fc }} {{ dst_port {https_port} }}\" }}]"
                ))
                .default_backend("plain"),
        )
        .backend(Proxy::new("plain").server("p", format!("127.0.0.1:{}", plain_srv.port)))
        .backend(Proxy::new("secure").server("t", format!("127.0.0.1:{}", tls_srv.port)))
        .build();
    let lb = Ringlb::start(&cfg, &[]);
    let get = |url: String| {
        let out = Command::new("curl")
            .args(["-sS", "--cacert", &pki.ca(), "--resolve"])
            .arg(format!("a.test:{https_port}:127.0.0.1"))
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    assert_eq!(
        get(format!("https://a.test:{https_port}/")),
        "tls backend\n",
        "{}",
        lb.output()
    );
    assert_eq!(
        get(format!("http://127.0.0.1:{http_port}/")),
        "plain backend\n"
    );
}

/// A rustls client trusting the test CA, connected to `port` as `a.test`.
fn rustls_client(pki: &Pki, port: u16) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let conn =
        rustls::ClientConnection::new(client_config(pki), "a.test".try_into().unwrap()).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    rustls::StreamOwned::new(conn, sock)
}

/// Reads one response with a `Content-Length` body: (head, body).
fn read_response(r: &mut impl BufRead) -> (String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "closed in a head: {head}"
        );
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    (head, body)
}

/// Mode http straight on the TLS session (no bridge): one TLS connection
/// carries pipelined requests (64 KiB of them in one write: some wait
/// decrypted inside the TLS session, not on the socket), a 4 MiB
/// upload echoed back byte-exact, a request with `Expect: 100-continue`, and
/// then a WebSocket-style upgrade whose tunnel echoes 1 MiB.
#[test]
fn one_tls_connection_pipelines_uploads_and_upgrades_in_mode_http() {
    if !require(&["openssl"]) {
        return;
    }
    use support::http::{KeepAliveOrigin, OriginFault};
    let pki = Pki::new();
    let origin = KeepAliveOrigin::start("s1", OriginFault::None);
    let port = free_port();
    let cfg = https_front(port, &pki, origin.port).build();
    let lb = Ringlb::start(&cfg, &[]);
    let mut tls = BufReader::with_capacity(1 << 16, rustls_client(&pki, port));
    let upload = pattern(5, 4 << 20);
    let mut batch = Vec::new();
    batch.extend_from_slice(b"GET /one HTTP/1.1\r\nHost: a.test\r\n\r\n");
    batch.extend_from_slice(b"GET /two HTTP/1.1\r\nHost: a.test\r\n\r\n");
    batch.extend_from_slice(b"GET /three HTTP/1.1\r\nHost: a.test\r\n\r\n");
    tls.get_mut().write_all(&batch).unwrap();
    tls.get_mut().flush().unwrap();
    for _ in 0..3 {
        let (head, body) = read_response(&mut tls);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{}", lb.output());
        assert_eq!(body, b"s1");
    }
    assert_eq!(origin.requests(), 3);
    // 64 requests of exactly 1 KiB in one write: the session's buffer fills
    // at a request's end while the next ones wait decrypted inside the TLS
    // session, with nothing left on the socket to wake a wait for it.
    let mut batch = Vec::new();
    for i in 0..64 {
        let start = format!("GET /p{i:02} HTTP/1.1\r\nHost: a.test\r\nX-Pad: ");
        let pad = 1024 - start.len() - 4;
        batch.extend_from_slice(start.as_bytes());
        batch.extend(std::iter::repeat_n(b'p', pad));
        batch.extend_from_slice(b"\r\n\r\n");
    }
    assert_eq!(batch.len(), 64 * 1024);
    tls.get_mut().write_all(&batch).unwrap();
    tls.get_mut().flush().unwrap();
    for _ in 0..64 {
        let (head, body) = read_response(&mut tls);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{}", lb.output());
        assert_eq!(body, b"s1");
    }
    assert_eq!(origin.requests(), 67);
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: {}\r\n\r\n",
        upload.len()
    );
    tls.get_mut().write_all(head.as_bytes()).unwrap();
    tls.get_mut().write_all(&upload).unwrap();
    tls.get_mut().flush().unwrap();
    let (head, body) = read_response(&mut tls);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body.len(), upload.len());
    assert!(body == upload, "the echoed upload differs");
    // `Expect: 100-continue`: the interim answer first, then the body.
    tls.get_mut()
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    tls.get_mut().flush().unwrap();
    let (interim, _) = read_response(&mut tls);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    tls.get_mut().write_all(b"hello").unwrap();
    tls.get_mut().flush().unwrap();
    let (head, body) = read_response(&mut tls);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"hello");
    // The upgrade: a tunnel over the same TLS session.
    tls.get_mut()
        .write_all(b"GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .unwrap();
    tls.get_mut().flush().unwrap();
    let (head, _) = read_response(&mut tls);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let frames = pattern(9, 1 << 20);
    let mut echoed = vec![0u8; frames.len()];
    for (part, back) in frames.chunks(64 << 10).zip(echoed.chunks_mut(64 << 10)) {
        tls.get_mut().write_all(part).unwrap();
        tls.get_mut().flush().unwrap();
        tls.read_exact(back).unwrap();
    }
    assert!(echoed == frames, "the tunnel's echo differs");
    // Everything went over one client connection and one server connection.
    assert_eq!(origin.accepted(), 1, "{}", lb.output());
    assert_eq!(origin.requests(), 70);
}

/// `tune.ssl.ktls on`: `check` and `run` say whether the kernel offers the
/// `tls` ULP, quoting `net.ipv4.tcp_available_ulp`, and TLS keeps working in
/// user space; a bad value is an error with its line.
#[test]
fn ktls_switch_says_why_tls_stays_in_user_space() {
    if !require(&["openssl", "curl", "nginx"]) {
        return;
    }
    let ulps = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp").unwrap_or_default();
    let want = if ulps.split_whitespace().any(|u| u == "tls") {
        "does not hand TLS sessions to it yet".to_string()
    } else {
        format!(
            "offers no tls ULP (net.ipv4.tcp_available_ulp: {}",
            ulps.trim()
        )
    };
    let pki = Pki::new();
    let nginx = Nginx::start(&[("index.html", "hello\n")]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let text = |v: &str| {
        format!(
            "global\n    tune.ssl.ktls {v}\ndefaults\n    mode http\n    timeout connect 2s\n    \
             timeout client 10s\n    timeout server 10s\nlisten a\n    bind 127.0.0.1:{port} ssl crt {}\n    \
             server s 127.0.0.1:{}\n",
            pki.pem("1-a.pem").display(),
            nginx.port
        )
    };
    let bad = write_file(dir.path(), "bad.cfg", &text("maybe"));
    let (code, _, err) = ringlb_cmd(&["check", "-f", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("bad.cfg:2:") && err.contains("expected on or off"),
        "{err}"
    );
    let cfg = write_file(dir.path(), "ktls.cfg", &text("on"));
    // `check` prints its warnings on stdout, `run` on stderr.
    let (code, out, err) = ringlb_cmd(&["check", "-f", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&want), "{out}");
    let lb = Ringlb::start_file(dir, cfg, &[]);
    assert!(lb.output().contains(&want), "{}", lb.output());
    let resolve = format!("a.test:{port}:127.0.0.1");
    let out = Command::new("curl")
        .args(["-sS", "--cacert", &pki.ca(), "--resolve", &resolve])
        .arg(format!("https://a.test:{port}/index.html"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
}

/// A request that ends exactly where the session's buffer does, and the next
/// request in the same TLS record: the second is already decrypted inside
/// the TLS session while nothing is left on the socket. Waiting for the
/// socket there would stall it until a timeout; it must be answered at once.
#[test]
fn a_request_waiting_decrypted_in_the_tls_session_is_served() {
    if !require(&["openssl"]) {
        return;
    }
    use support::http::{KeepAliveOrigin, OriginFault};
    let pki = Pki::new();
    let origin = KeepAliveOrigin::start("s1", OriginFault::None);
    let port = free_port();
    let cfg = https_front(port, &pki, origin.port)
        .global("tune = { bufsize = 4096 }")
        .build();
    let lb = Ringlb::start(&cfg, &[]);
    let mut tls = BufReader::new(rustls_client(&pki, port));
    tls.get_mut()
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Request A: 4096 bytes in all, the buffer's size; request B after it.
    let head = |len: usize| {
        format!("POST /a HTTP/1.1\r\nHost: a.test\r\nContent-Length: {len:05}\r\n\r\n")
    };
    let body_len = 4096 - head(0).len();
    let mut batch = head(body_len).into_bytes();
    batch.extend(std::iter::repeat_n(b'a', body_len));
    assert_eq!(batch.len(), 4096);
    batch.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: a.test\r\n\r\n");
    // One write: one TLS record (under 16 KiB of plaintext).
    tls.get_mut().write_all(&batch).unwrap();
    tls.get_mut().flush().unwrap();
    let (h, body) = read_response(&mut tls);
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert_eq!(body.len(), body_len);
    // A stalled B would end in the read timeout above (`timeout client` is
    // 30 s), not in an answer.
    let (h, body) = read_response(&mut tls);
    assert!(h.starts_with("HTTP/1.1 200"), "{h}\n{}", lb.output());
    assert_eq!(body, b"s1");
}

/// The first line a server sends, over TLS to `port` with `sni` (the test CA
/// trusted; the name checked against the certificate the proxy picked).
fn line_over_tls(port: u16, pki: &Pki, sni: &str) -> String {
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(client_config(pki), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while tls.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn sni_routes_tcp_sessions_as_haproxy_does() {
    // Mode tcp, TLS terminated on the bind: `ssl_fc_sni` picks the backend
    // when the session starts, in haproxy and in ringlb running the same
    // haproxy.cfg (b.test → b2, a name under wild.test → b3, else b1).
    let pki = Pki::new();
    let s: Vec<TestServer> = ["one", "two", "three"]
        .iter()
        .map(|n| TestServer::start(n, Behaviour::Hello))
        .collect();
    let cfg = |port: u16| {
        let mut c = haproxy_defaults("tcp", "2s", "30s");
        c += &format!(
            "frontend fe\n    bind 127.0.0.1:{port} ssl crt {}\n    \
             use_backend b2 if {{ ssl_fc_sni -i b.test }}\n    \
             use_backend b3 if {{ ssl_fc_sni -m end .wild.test }}\n    \
             default_backend b1\n",
            pki.crts()
        );
        for (i, srv) in s.iter().enumerate() {
            c += &format!("backend b{}\n    server {} {}\n", i + 1, srv.name, srv.addr);
        }
        c
    };
    let ask = |port: u16| {
        ["a.test", "b.test", "x.wild.test"]
            .map(|sni| line_over_tls(port, &pki, sni))
            .to_vec()
    };
    let hport = free_port();
    let _h = support::servers::Haproxy::start(&cfg(hport), &[hport]);
    let theirs = ask(hport);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg(port)).unwrap();
    let _lb = Ringlb::start_file(dir, path, &["--shards", "2"]);
    let ours = ask(port);
    assert_eq!(theirs, ["one", "two", "three"], "haproxy");
    assert_eq!(ours, theirs, "ringlb");
}
