//! Privilege drop through the real binary (HAProxy's `user`/`group`/`chroot`,
//! the tutorial's `user ha`): once ready, every thread of ringlb runs as the
//! configured user and group and the proxy still serves; an unknown user is a
//! startup error before anything is bound; `--no-root` refuses root without a
//! user to become.

mod support;

use std::net::TcpStream;

use support::*;

/// (real uid, real gid) of every thread of `pid`, from /proc.
fn thread_ids(pid: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let status = std::fs::read_to_string(t.path().join("status")).unwrap();
        let field = |name: &str| -> u32 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        out.push((field("Uid:"), field("Gid:")));
    }
    out
}

/// Whether the test runs as root; if not, it skips loudly (`why`), and
/// fails under `CI=true`, where it runs as root.
fn root_or_skip(why: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root"
        );
        eprintln!("SKIPPED: not root; {why}");
    }
    root
}

#[test]
fn every_thread_runs_as_the_configured_user_after_binding() {
    // Only root can switch users.
    if !root_or_skip("privilege drop needs root") {
        return;
    }
    let srv = TestServer::start("s", Behaviour::Hello);
    let port = free_port();
    let cfg = Cfg::new()
        .global("user = \"nobody\"")
        .global("group = \"nogroup\"")
        .listen(Proxy::new("l").port(port).server("s", srv.addr))
        .build();
    let lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let ids = thread_ids(lb.pid());
    assert!(ids.len() >= 4, "main, 2 shards, control, log: {ids:?}");
    assert!(
        ids.iter().all(|&(u, g)| u == 65534 && g == 65534),
        "every thread as nobody:nogroup: {ids:?}"
    );
    // No capability left: root's files (a key, /etc/shadow) cannot be
    // opened again by the process.
    let status = std::fs::read_to_string(format!("/proc/{}/status", lb.pid())).unwrap();
    for cap in ["CapEff:", "CapPrm:"] {
        let v = status
            .lines()
            .find_map(|l| l.strip_prefix(cap))
            .map(str::trim)
            .unwrap();
        assert_eq!(v, "0000000000000000", "{cap} {v}");
    }
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(read_line(&mut c), "s", "still serving after the drop");
}

#[test]
fn an_unknown_user_is_a_startup_error() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(
        dir.path(),
        "c.toml",
        &Cfg::new()
            .global("user = \"no-such-user-here\"")
            .listen(Proxy::new("l").port(port).server("s", "127.0.0.1:1"))
            .build(),
    );
    let (code, _, err) = ringlb_cmd(&["run", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown user \"no-such-user-here\""), "{err}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing was bound"
    );
}

/// `--no-root`: as root with no `user` to become, ringlb refuses to start
/// (nothing bound); with one, it starts and drops to it.
#[test]
fn no_root_refuses_root_without_a_user_to_become() {
    if !root_or_skip("--no-root only refuses root") {
        return;
    }
    let srv = TestServer::start("s", Behaviour::Hello);
    let port = free_port();
    let listen = Proxy::new("l").port(port).server("s", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(
        dir.path(),
        "c.toml",
        &Cfg::new().listen(listen.clone()).build(),
    );
    let (code, _, err) = ringlb_cmd(&["run", "--no-root", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--no-root: refusing to run as root with no user to become"),
        "{err}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing bound"
    );
    let cfg = Cfg::new()
        .global("user = \"nobody\"")
        .global("group = \"nogroup\"")
        .listen(listen)
        .build();
    let lb = Ringlb::start(&cfg, &["--no-root", "--shards", "1"]);
    assert!(thread_ids(lb.pid()).iter().all(|&(u, _)| u == 65534));
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(read_line(&mut c), "s");
}

/// systemd's notify protocol, checked by binding `$NOTIFY_SOCKET` ourselves
/// (systemd may not run here): READY=1 once serving, STOPPING=1 on SIGTERM.
#[test]
fn readiness_and_stopping_are_notified_to_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let port = free_port();
    let cfg = Cfg::new()
        .listen(Proxy::new("l").port(port).server("s", "127.0.0.1:1"))
        .build();
    let mut lb = Ringlb::start_env(&cfg, &[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("READY=1 datagram");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("READY=1\n"), "{msg}");
    assert!(msg.contains(&format!("MAINPID={}", lb.pid())), "{msg}");
    assert!(msg.contains("STATUS=Ready:"), "{msg}");
    lb.stop(std::time::Duration::from_secs(10)).unwrap();
    let n = sock.recv(&mut buf).expect("STOPPING=1 datagram");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("STOPPING=1\n"));
}
