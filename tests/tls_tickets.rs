//! Session tickets across processes and over time, through the real binary and
//! `openssl s_client`: two ringlb processes loading the same `tls-ticket-keys`
//! file resume each other's tickets (TLS 1.2 and 1.3) and one with another file
//! does not; `tune.ssl.lifetime` bounds how long a ticket is honoured; a bad key
//! file is a config error naming the file and the line.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::config::q;
use support::servers::haproxy_defaults;
use support::tls::{require, Pki};
use support::*;

/// A server that greets each client with a line, so `s_client` reads past the
/// handshake (where TLS 1.3 tickets arrive) before it is stopped.
fn greeter() -> u16 {
    let l = support::local_listener();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().map_while(Result::ok) {
            let _ = c.write_all(b"hello\r\n");
        }
    });
    port
}

/// HAProxy's key file: `n` keys of 80 bytes, base64, one a line.
fn key_file(dir: &Path, name: &str, seed: u8, n: usize) -> PathBuf {
    let mut text = String::new();
    for k in 0..n {
        let key: Vec<u8> = (0..80u8)
            .map(|i| {
                seed.wrapping_mul(31)
                    .wrapping_add(i)
                    .wrapping_add(k as u8 * 7)
            })
            .collect();
        text += &b64(&key);
        text.push('\n');
    }
    write_file(dir, name, &text)
}

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let v = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= c.len() {
                T[(v >> shift) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

fn tls_front(port: u16, crt: &str, server: u16, keys: Option<&Path>, global: &str) -> String {
    let keys = keys.map_or(String::new(), |k| {
        format!(", tls-ticket-keys = {}", q(k.display()))
    });
    support::tls::tls_tcp_front(port, crt, format!("127.0.0.1:{server}"), &keys)
        .global(global)
        .build()
}

/// One handshake that reads the greeting and saves the session (with the
/// server's ticket) to `sess`.
fn save_session(port: u16, ca: &str, version: &str, sess: &Path) {
    let _ = std::fs::remove_file(sess);
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            version,
            "-servername",
            "a.test",
            "-CAfile",
            ca,
        ])
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-sess_out")
        .arg(sess)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "hello");
    // s_client writes the session when the ticket arrives (before the
    // greeting in TLS 1.3, with the handshake in TLS 1.2).
    let saved = wait_until(Duration::from_secs(5), || {
        std::fs::metadata(sess).is_ok_and(|m| m.len() > 0)
    });
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    assert!(saved, "no session saved in {}", sess.display());
}

/// `Reused, TLSv1.x` or `New, TLSv1.x`: how a handshake with `sess` went.
fn resume(port: u16, ca: &str, version: &str, sess: &Path) -> String {
    let out = Command::new("openssl")
        .args(["s_client", version, "-servername", "a.test", "-CAfile", ca])
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-sess_in")
        .arg(sess)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("Reused, ") || l.starts_with("New, "))
        .unwrap_or_else(|| {
            panic!(
                "no session line in:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .split(',')
        .take(2)
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn tls_ticket_keys_resume_across_processes() {
    if !require(&["openssl"]) {
        return;
    }
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let shared = key_file(dir.path(), "shared.keys", 1, 3);
    let other = key_file(dir.path(), "other.keys", 2, 3);
    let server = greeter();
    let (p1, p2, p3, p4) = (free_port(), free_port(), free_port(), free_port());
    let a = Ringlb::start(&tls_front(p1, &pki.crts(), server, Some(&shared), ""), &[]);
    let b = Ringlb::start(&tls_front(p2, &pki.crts(), server, Some(&shared), ""), &[]);
    let c = Ringlb::start(&tls_front(p3, &pki.crts(), server, Some(&other), ""), &[]);
    // Without a file, each process has keys of its own.
    let d = Ringlb::start(&tls_front(p4, &pki.crts(), server, None, ""), &[]);
    let ca = pki.ca();
    let sess = dir.path().join("sess.pem");
    for (flag, v) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        save_session(p1, &ca, flag, &sess);
        assert_eq!(resume(p1, &ca, flag, &sess), format!("Reused, {v}"));
        assert_eq!(
            resume(p2, &ca, flag, &sess),
            format!("Reused, {v}"),
            "{}",
            b.output()
        );
        assert_eq!(
            resume(p3, &ca, flag, &sess),
            format!("New, {v}"),
            "{}",
            c.output()
        );
        assert_eq!(
            resume(p4, &ca, flag, &sess),
            format!("New, {v}"),
            "{}",
            d.output()
        );
        // And the other way: the second process' tickets resume on the first.
        save_session(p2, &ca, flag, &sess);
        assert_eq!(
            resume(p1, &ca, flag, &sess),
            format!("Reused, {v}"),
            "{}",
            a.output()
        );
    }
}

#[test]
fn tls_ticket_keys_rotation_by_appending_a_key() {
    if !require(&["openssl"]) {
        return;
    }
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let three = key_file(dir.path(), "three.keys", 5, 3);
    // The same three keys and a fourth: the old encrypting key still decrypts.
    let mut text = std::fs::read_to_string(&three).unwrap();
    text += &std::fs::read_to_string(key_file(dir.path(), "x.keys", 9, 1)).unwrap();
    let four = write_file(dir.path(), "four.keys", &text);
    let server = greeter();
    let (p1, p2) = (free_port(), free_port());
    let _old = Ringlb::start(&tls_front(p1, &pki.crts(), server, Some(&three), ""), &[]);
    let _new = Ringlb::start(&tls_front(p2, &pki.crts(), server, Some(&four), ""), &[]);
    let (ca, sess) = (pki.ca(), dir.path().join("sess.pem"));
    save_session(p1, &ca, "-tls1_3", &sess);
    assert_eq!(resume(p2, &ca, "-tls1_3", &sess), "Reused, TLSv1.3");
    save_session(p2, &ca, "-tls1_3", &sess);
    assert_eq!(resume(p1, &ca, "-tls1_3", &sess), "Reused, TLSv1.3");
}

#[test]
fn tune_ssl_lifetime_expires_tickets() {
    if !require(&["openssl"]) {
        return;
    }
    let pki = Pki::new();
    let server = greeter();
    let port = free_port();
    // haproxy.cfg, as users write it: seconds.
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), "t.keys", 3, 3);
    let defaults = haproxy_defaults("tcp", "2s", "30s");
    let cfg = format!(
        "global\n    tune.ssl.lifetime 1\n\n{defaults}\n\
         listen tls\n    bind 127.0.0.1:{port} ssl crt {} tls-ticket-keys {}\n    server s1 127.0.0.1:{server}\n",
        pki.crts(),
        keys.display()
    );
    let file = write_file(dir.path(), "t.cfg", &cfg);
    let _lb = Ringlb::start_file(dir, file, &[]);
    let sess = _lb.dir.path().join("sess.pem");
    let ca = pki.ca();
    for (flag, v) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        save_session(port, &ca, flag, &sess);
        let saved = Instant::now();
        let first = resume(port, &ca, flag, &sess);
        if saved.elapsed() < Duration::from_millis(800) {
            assert_eq!(first, format!("Reused, {v}"));
        }
        // Expiry is time itself: no event to wait for, so wait past it.
        std::thread::sleep(Duration::from_millis(1200).saturating_sub(saved.elapsed()));
        assert_eq!(resume(port, &ca, flag, &sess), format!("New, {v}"));
    }
}

#[test]
fn bad_ticket_key_files_are_config_errors_naming_file_and_line() {
    if !require(&["openssl"]) {
        return;
    }
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read_to_string(key_file(d, "good.keys", 1, 3)).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let cases: Vec<(PathBuf, &str)> = vec![
        (d.join("missing.keys"), "No such file"),
        (
            write_file(d, "short.keys", &(lines[..2].join("\n") + "\n")),
            "2 key(s), at least 3",
        ),
        (
            write_file(
                d,
                "b64.keys",
                &format!("{}\n%%not base64%%\n{}\n", lines[0], lines[1]),
            ),
            "b64.keys:2: not a base64 key",
        ),
        (
            write_file(
                d,
                "len.keys",
                &format!("{}\n{}\n{}\n", lines[0], lines[1], b64(&[7u8; 32])),
            ),
            "len.keys:3: a key is 48 or 80 bytes",
        ),
    ];
    for (file, why) in cases {
        let f = write_file(d, "t.toml", &tls_front(1, &pki.crts(), 2, Some(&file), ""));
        let (code, out, err) = ringlb_cmd(&["check", "-f", f.to_str().unwrap()]);
        assert_eq!(code, 1, "{}: {out}{err}", file.display());
        assert!(
            err.contains(&file.display().to_string()) && err.contains(why),
            "{}: {err}",
            file.display()
        );
        // The config file's own position is named too.
        assert!(err.contains("t.toml:"), "{err}");
    }
    // tune ssl-lifetime out of range, in TOML.
    let f = write_file(
        d,
        "t.toml",
        &tls_front(
            1,
            &pki.crts(),
            2,
            None,
            "tune = { ssl-lifetime = \"500ms\" }",
        ),
    );
    let (code, _, err) = ringlb_cmd(&["check", "-f", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("ssl-lifetime"), "{err}");
}
