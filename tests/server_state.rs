//! Server state across a reload, HAProxy's way: the running process's
//! `show servers state` saved into `server-state-file`, and the next process
//! (`load-server-state-from-file global`) starts from it — a server seen DOWN
//! stays DOWN (no traffic) until its checks bring it up, one put in MAINT
//! stays there, a changed weight is kept. Then the same with haproxy.cfg,
//! and without the option: everything starts from the configuration.
//!
//! Needs `socat` (Debian package) for the runtime API.

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use support::clients::socat;
use support::*;

/// `show servers state`'s (op_state, admin_state, uweight) of `srv`.
fn state(sock: &Path, srv: &str) -> (u32, u32, u32) {
    let out = socat(sock, "show servers state");
    let l = out
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some(srv))
        .unwrap_or_else(|| panic!("no {srv} in {out}"));
    let f: Vec<u32> = l
        .split_whitespace()
        .skip(5)
        .take(3)
        .map(|v| v.parse().unwrap())
        .collect();
    (f[0], f[1], f[2])
}

/// Listen `app` on `port` with `servers` (name, address, extra keys), the
/// admin socket `sock` and `server-state-file`, loaded if `load`.
fn config(port: u16, sock: &Path, state_file: &Path, load: bool, servers: &[Srv]) -> String {
    let app = servers
        .iter()
        .fold(Proxy::new("app").port(port), |l, (name, addr, extra)| {
            l.server_with(name, addr, extra)
        });
    let cfg = Cfg::new()
        .admin_socket(sock.display())
        .global(format!(
            "server-state-file = {}",
            support::config::q(state_file.display())
        ))
        .timeouts("1s", "5s", "5s");
    let cfg = if load {
        cfg.defaults("load-server-state-from-file = \"global\"")
    } else {
        cfg
    };
    cfg.listen(app).build()
}

/// A server: name, address, extra keys.
type Srv = (&'static str, String, &'static str);

#[test]
fn a_new_process_starts_from_the_saved_server_state() {
    let a = TestServer::start("a", Behaviour::Hello);
    let b = TestServer::start("b", Behaviour::Hello);
    let c = TestServer::start("c", Behaviour::Hello);
    let dead = free_port();
    // `dead` is checked (nothing listens there: DOWN after `fall` checks);
    // the others are not checked.
    let servers: Vec<Srv> = vec![
        ("a", a.addr.to_string(), ""),
        ("b", b.addr.to_string(), ""),
        ("c", c.addr.to_string(), ""),
        (
            "dead",
            format!("127.0.0.1:{dead}"),
            r#"check = true, inter = "100ms", fall = 1, rise = 100"#,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state");
    let sock1 = dir.path().join("one.sock");
    let p1 = free_port();
    let one = Ringlb::start(
        &config(p1, &sock1, &file, true, &servers),
        &["--shards", "1"],
    );
    assert!(
        wait_until(Duration::from_secs(10), || state(&sock1, "dead").0 == 0),
        "dead never DOWN"
    );
    assert_eq!(socat(&sock1, "set server app/b state maint"), "\n");
    assert_eq!(socat(&sock1, "set server app/c weight 7"), "\n");
    // What an operator's reload script saves before starting the new process.
    std::fs::write(&file, socat(&sock1, "show servers state")).unwrap();
    drop(one);

    let sock2 = dir.path().join("two.sock");
    let p2 = free_port();
    let _two = Ringlb::start(
        &config(p2, &sock2, &file, true, &servers),
        &["--shards", "1"],
    );
    // Before any check: dead is DOWN, b in MAINT, c at weight 7.
    assert_eq!(state(&sock2, "dead"), (0, 0, 1));
    assert_eq!(state(&sock2, "b").1 & 1, 1, "b still in MAINT");
    assert_eq!(state(&sock2, "c").2, 7);
    // And traffic follows: only a and c answer.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(("127.0.0.1", p2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        seen.insert(read_line(&mut s));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["a", "c"],
        "no session for the DOWN or MAINT server"
    );

    // Without load-server-state-from-file the same file changes nothing.
    let sock3 = dir.path().join("three.sock");
    let _three = Ringlb::start(
        &config(free_port(), &sock3, &file, false, &servers),
        &["--shards", "1"],
    );
    // (`dead` is not looked at here: its own checks mark it DOWN within
    // 100 ms, whatever the file says.)
    assert_eq!(state(&sock3, "b").1, 0);
    assert_eq!(state(&sock3, "c").2, 1);
}

#[test]
fn haproxy_cfg_keywords_and_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_file(
        dir.path(),
        "s.cfg",
        &format!(
            "global\n    server-state-file {}/nosuch\ndefaults\n    mode tcp\n    timeout connect 1s\n    \
             timeout client 1s\n    timeout server 1s\n    load-server-state-from-file global\n\
             listen app\n    bind 127.0.0.1:{port}\n    server a 127.0.0.1:1\n",
            dir.path().display()
        ),
    );
    let (code, out, err) = ringlb_cmd(&["-c", "-f", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // Running with the file missing: a warning, and the servers start from
    // the configuration.
    let argv: Vec<String> = vec!["-f".into(), cfg.display().to_string(), "-db".into()];
    let lb = Ringlb::start_argv(tempfile::tempdir().unwrap(), cfg.clone(), &argv);
    assert!(
        lb.output().contains("server-state-file") && lb.output().contains("cannot be read"),
        "{}",
        lb.output()
    );
    let bad = write_file(
        dir.path(),
        "bad.cfg",
        "defaults\n    load-server-state-from-file local\nlisten app\n    bind 127.0.0.1:1\n    server a 127.0.0.1:1\n",
    );
    let (code, _, err) = ringlb_cmd(&["-c", "-f", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("only global and none"), "{err}");
}
