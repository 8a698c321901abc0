//! `ringlb-bench handshake` against a small rustls server in the test that
//! counts the handshakes it completes, full and resumed: the client's counts
//! must be non-zero and equal to the server's. The certificate is made with the
//! `openssl` CLI (skipped loudly without it; a failure under CI=true).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{HandshakeKind, ServerConfig, ServerConnection};
use serde_json::Value;

#[derive(Default)]
struct Seen {
    full: AtomicU64,
    resumed: AtomicU64,
}

fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is not installed and CI=true"
        );
        eprintln!("SKIPPED: openssl is not installed");
    }
    ok
}

/// A TLS server (ECDSA P-256, stateless tickets) counting finished handshakes;
/// it closes after the client's `close_notify`, as a proxy with no request does.
fn server(dir: &std::path::Path) -> (u16, Arc<Seen>) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=bench.test", "-days", "1"])
        .arg("-keyout")
        .arg(dir.join("k.pem"))
        .arg("-out")
        .arg(dir.join("c.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("c.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("k.pem")).unwrap();
    let provider = Arc::new(ringlb::tls::provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    cfg.ticketer = ringlb::tls::new_ticketer().unwrap();
    let cfg = Arc::new(cfg);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming().map_while(Result::ok) {
            let (cfg, s) = (cfg.clone(), s.clone());
            std::thread::spawn(move || serve_one(c, cfg, &s));
        }
    });
    (port, seen)
}

fn serve_one(mut sock: TcpStream, cfg: Arc<ServerConfig>, seen: &Seen) -> Option<()> {
    let mut conn = ServerConnection::new(cfg).ok()?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).ok()?;
    }
    match conn.handshake_kind() {
        Some(HandshakeKind::Resumed) => seen.resumed.fetch_add(1, Ordering::SeqCst),
        _ => seen.full.fetch_add(1, Ordering::SeqCst),
    };
    loop {
        while conn.wants_write() {
            conn.write_tls(&mut sock).ok()?;
        }
        if conn.read_tls(&mut sock).ok()? == 0 {
            break;
        }
        if conn.process_new_packets().ok()?.peer_has_closed() {
            break;
        }
    }
    conn.send_close_notify();
    while conn.wants_write() {
        conn.write_tls(&mut sock).ok()?;
    }
    let _ = sock.flush();
    // Let the client see the close before its reset arrives.
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let _ = sock.read(&mut [0u8; 64]);
    Some(())
}

fn handshake(port: u16, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ringlb-bench"))
        .args(["handshake", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--connections", "8", "--duration", "1s", "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn handshake_counts_what_the_server_completed() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (port, seen) = server(dir.path());
    for (extra, tls) in [(&[][..], "1.3"), (&["--tls", "1.2"][..], "1.2")] {
        let before = seen.full.load(Ordering::SeqCst);
        let r = handshake(port, extra);
        assert_eq!(r["mode"], "handshake");
        assert_eq!(r["tls"], tls);
        let n = r["handshakes"].as_u64().unwrap();
        assert!(n > 0, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert_eq!(
            r["resumed"], 0,
            "without --resume every handshake is full: {r}"
        );
        assert_eq!(seen.full.load(Ordering::SeqCst) - before, n, "{r}");
        assert!(r["handshakes_per_s"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(seen.resumed.load(Ordering::SeqCst), 0);
}

#[test]
fn handshake_resume_resumes_and_the_server_agrees() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (port, seen) = server(dir.path());
    for (extra, tls) in [(&[][..], "1.2"), (&["--tls", "1.3"][..], "1.3")] {
        let (full0, res0) = (
            seen.full.load(Ordering::SeqCst),
            seen.resumed.load(Ordering::SeqCst),
        );
        let r = handshake(port, &[&["--resume"], extra].concat());
        assert_eq!(r["tls"], tls);
        let n = r["handshakes"].as_u64().unwrap();
        let resumed = r["resumed"].as_u64().unwrap();
        assert_eq!(r["failed"], 0, "{r}");
        // Only the first handshakes, before a ticket is in hand, are full.
        assert!(resumed > 0 && resumed + 8 >= n, "{r}");
        assert_eq!(seen.resumed.load(Ordering::SeqCst) - res0, resumed, "{r}");
        assert_eq!(seen.full.load(Ordering::SeqCst) - full0, n - resumed, "{r}");
    }
}
