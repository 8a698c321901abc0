//! Seamless reload, for real: a client opening connection after connection and
//! a long-lived byte-checked stream, both through ringlb to a real
//! `redis-server`, while ringlb is reloaded 20 times by a new process taking
//! the old one's listeners (`-x SOCKET -sf PID`) and 20 times by a master
//! replacing its worker (`-W`, `ringlb reload`), the shard count changing
//! 2 → 1 and 1 → 2 on the way. Not one connection may fail, and the stream must
//! come back byte-exact. Also: a bad configuration on reload keeps the old
//! worker serving and `ringlb reload` says why (exit 1); the systemd notify
//! datagrams a master sends (`READY=1`, `RELOADING=1`, `READY=1`); a replaced
//! certificate served after a reload, a broken one refused by it.
//!
//! Everything runs on 127.0.0.1 with ephemeral ports; no namespace is needed
//! (taken-over sockets are never closed, so `tcp_migrate_req` plays no part).

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::load::{ping_once, ConnLoop, Stream};
use support::servers::{haproxy_defaults, RedisServer};
use support::*;

/// Shard counts for successive generations: every transition happens
/// (2→2, 2→1, 1→1, 1→2).
const SHARDS: [usize; 4] = [2, 1, 1, 2];
const RELOADS: usize = 20;

/// Global and defaults of every generation: `shards`, the admin socket in
/// `dir` with its listeners exposed for `-x`.
fn base(shards: usize, dir: &Path) -> Cfg {
    Cfg::new()
        .global(format!("shards = {shards}"))
        .admin_socket(dir.join("admin.sock").display())
        .global("expose-fd-listeners = true")
        .mode("tcp")
        .timeouts("2s", "60s", "60s")
}

/// Listen `redis` on `port` in front of server `r1` at `server`.
fn redis_listen(port: u16, server: &str) -> Proxy {
    Proxy::new("redis").port(port).server("r1", server)
}

fn config(port: u16, redis: u16, shards: usize, dir: &Path) -> String {
    base(shards, dir)
        .listen(redis_listen(port, &format!("127.0.0.1:{redis}")))
        .build()
}

fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn start(cfg: &Path, args: &[&str]) -> Ringlb {
    Ringlb::start_argv(tempfile::tempdir().unwrap(), cfg.to_path_buf(), &argv(args))
}

#[test]
fn x_and_sf_reloads_lose_no_connection_across_shard_counts() {
    let redis = RedisServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg: PathBuf = root.path().join("ringlb.toml");
    let admin = root.path().join("admin.sock");
    let admin = admin.to_str().unwrap();
    std::fs::write(&cfg, config(port, redis.port, SHARDS[0], root.path())).unwrap();
    let c = cfg.to_str().unwrap();
    let mut current = start(&cfg, &["-f", c, "-db"]);
    let load = ConnLoop::start(port);
    let stream = Stream::start(port);
    load.wait_for(20);
    let mut former: Vec<Ringlb> = Vec::new();
    for i in 1..=RELOADS {
        std::fs::write(&cfg, config(port, redis.port, SHARDS[i % 4], root.path())).unwrap();
        let old = current.pid().to_string();
        // HAProxy's command line, and ringlb's own (`run -x --sf`), in turn.
        let next = if i % 2 == 0 {
            start(&cfg, &["-f", c, "-db", "-x", admin, "-sf", &old])
        } else {
            start(&cfg, &["run", "-f", c, "-x", admin, "--sf", &old])
        };
        former.push(std::mem::replace(&mut current, next));
        // (The readiness line reaches `output` a moment after `start` saw it.)
        let shards = format!("ready: {} shards", SHARDS[i % 4]);
        assert!(
            wait_until(Duration::from_secs(2), || current
                .output()
                .contains(&shards)),
            "{}",
            current.output()
        );
        load.wait_for(20);
    }
    let bytes = finish_without_loss("-x/-sf", load, stream, || {
        for f in &former {
            eprintln!("--- former {}:\n{}", f.pid(), f.output());
        }
        eprintln!("--- current {}:\n{}", current.pid(), current.output());
    });
    assert!(bytes > 0);
    // Every former process finishes once its sessions (the stream's, for the
    // first one) are over.
    for f in &mut former {
        assert!(
            wait_until(Duration::from_secs(10), || f.exited().is_some()),
            "a former process is still running:\n{}",
            f.output()
        );
        assert!(f.exited().unwrap().success(), "{}", f.output());
    }
    assert!(current.exited().is_none(), "{}", current.output());
}

/// Ends the connection loop and the stream that ran across `what`'s reloads
/// and asserts that no connection failed and the stream went on; the bytes
/// it carried. `on_failure` runs (to show more) before a failure is asserted.
fn finish_without_loss(
    what: &str,
    load: ConnLoop,
    stream: Stream,
    on_failure: impl FnOnce(),
) -> u64 {
    let (attempts, failures, slowest) = load.finish();
    let (bytes, streamed) = stream.finish();
    if !failures.is_empty() {
        on_failure();
    }
    eprintln!(
        "{what}: {RELOADS} reloads, {attempts} connections, {} failed, slowest {slowest:.1} ms, stream {bytes} bytes",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {attempts} connections failed:\n{}",
        failures.len(),
        failures[..failures.len().min(3)].join("\n")
    );
    assert_eq!(streamed, Ok(()));
    bytes
}

/// `ringlb -W -f CFG -p PIDFILE EXTRA…`, once its pidfile is written.
fn start_master(cfg: &Path, pidfile: &Path, extra: &[&str]) -> Ringlb {
    let mut args = vec![
        "-W",
        "-f",
        cfg.to_str().unwrap(),
        "-p",
        pidfile.to_str().unwrap(),
    ];
    args.extend(extra);
    let master = start(cfg, &args);
    assert!(wait_until(Duration::from_secs(5), || pidfile.exists()));
    master
}

/// Runs `ringlb reload -p PIDFILE`: (exit code, stdout, stderr).
fn reload(pidfile: &Path) -> (i32, String, String) {
    ringlb_cmd(&["reload", "-p", pidfile.to_str().unwrap(), "--timeout", "30"])
}

#[test]
fn master_worker_reloads_lose_no_connection_across_shard_counts() {
    let redis = RedisServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = root.path().join("ringlb.toml");
    let pidfile = root.path().join("ringlb.pid");
    std::fs::write(&cfg, config(port, redis.port, SHARDS[0], root.path())).unwrap();
    let mut master = start_master(&cfg, &pidfile, &[]);
    let load = ConnLoop::start(port);
    let stream = Stream::start(port);
    load.wait_for(20);
    for i in 1..=RELOADS {
        std::fs::write(&cfg, config(port, redis.port, SHARDS[i % 4], root.path())).unwrap();
        let (code, out, err) = reload(&pidfile);
        assert_eq!(code, 0, "reload {i}: {out}{err}\n{}", master.output());
        assert!(out.contains("reload done"), "{out}");
        load.wait_for(20);
    }
    finish_without_loss("master-worker", load, stream, || {});
    // The master is still there, and stops cleanly with its workers.
    assert!(master.exited().is_none(), "{}", master.output());
    let out = master.output();
    assert!(out.contains("former worker"), "{out}");
    let st = master.stop(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "{st:?}\n{}",
        master.output()
    );
    assert!(!pidfile.exists());
}

#[test]
fn a_bad_config_on_reload_keeps_the_old_worker_serving() {
    let redis = RedisServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = root.path().join("ringlb.toml");
    let pidfile = root.path().join("ringlb.pid");
    std::fs::write(&cfg, config(port, redis.port, 1, root.path())).unwrap();
    let cli = root.path().join("master.sock");
    let master = start_master(
        &cfg,
        &pidfile,
        &["-S", &format!("{},mode,600", cli.display())],
    );
    let held = Stream::start(port);
    // A server address with a port out of range: the config does not load.
    let bad = base(1, root.path())
        .listen(redis_listen(port, "127.0.0.1:99999"))
        .build();
    assert_ne!(bad, config(port, redis.port, 1, root.path()));
    std::fs::write(&cfg, bad).unwrap();
    let (code, out, err) = reload(&pidfile);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("reload failed"), "{err}");
    assert!(
        err.contains("ringlb.toml:") && err.contains("99999"),
        "{err}"
    );
    assert!(
        master.output().contains("reload failed"),
        "{}",
        master.output()
    );
    // The master CLI's `reload` says the same (HAProxy 2.7+'s answer format).
    let answer = master_cli(&cli, "reload");
    assert!(
        answer.starts_with("Success=0\n--\n") && answer.contains("99999"),
        "{answer}"
    );
    // Nothing changed: new connections are served, the open one goes on.
    for _ in 0..20 {
        ping_once(port).unwrap();
    }
    // A worker that cannot start (its port is taken by someone else) is a
    // failed reload too, and still nothing changes.
    let taken = support::local_listener();
    let taken_port = taken.local_addr().unwrap().port();
    let with_taken = base(1, root.path())
        .listen(
            Proxy::new("redis")
                .port(taken_port)
                .port(port)
                .server("r1", format!("127.0.0.1:{}", redis.port)),
        )
        .build();
    std::fs::write(&cfg, with_taken).unwrap();
    let (code, out, err) = reload(&pidfile);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("cannot bind 127.0.0.1:{taken_port}")),
        "{err}"
    );
    ping_once(port).unwrap();
    // Fixed: the reload goes through.
    std::fs::write(&cfg, config(port, redis.port, 2, root.path())).unwrap();
    let (code, out, err) = reload(&pidfile);
    assert_eq!(code, 0, "{out}{err}");
    ping_once(port).unwrap();
    let answer = master_cli(&cli, "reload");
    assert!(answer.starts_with("Success=1\n--\n"), "{answer}");
    ping_once(port).unwrap();
    // One current worker; the first one (holding our stream) among the old.
    let procs = master_cli(&cli, "show proc");
    let (current, old) = procs.split_once("# old workers").unwrap();
    assert_eq!(current.matches("worker ").count(), 1, "{procs}");
    assert!(old.matches("worker ").count() >= 1, "{procs}");
    let (bytes, streamed) = held.finish();
    assert_eq!(streamed, Ok(()));
    assert!(bytes > 0);
}

#[test]
fn a_worker_that_dies_stops_the_master_loudly() {
    let redis = RedisServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = root.path().join("ringlb.toml");
    // Master-worker from the configuration (TOML `global.master-worker`).
    let text = base(1, root.path())
        .global("master-worker = true")
        .listen(redis_listen(port, &format!("127.0.0.1:{}", redis.port)))
        .build();
    std::fs::write(&cfg, text).unwrap();
    let mut master = start(&cfg, &["run", "-f", cfg.to_str().unwrap()]);
    ping_once(port).unwrap();
    // The worker's pid, from its readiness line.
    // (The readiness line reaches `output` a moment after `start` saw it.)
    let find = || -> Option<u32> {
        master.output().lines().find_map(|l| {
            l.strip_prefix("ringlb ready: ")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
    };
    assert!(wait_until(Duration::from_secs(2), || find().is_some()));
    let worker = find().unwrap();
    assert_ne!(worker, master.pid());
    ringlb::sys::signals::send(worker, libc::SIGKILL).unwrap();
    // HAProxy's exit-on-failure: the master says so and exits non-zero, so
    // its supervisor restarts the whole; it does not quietly start another.
    assert!(
        wait_until(Duration::from_secs(10), || master.exited().is_some()),
        "{}",
        master.output()
    );
    assert!(!master.exited().unwrap().success());
    let out = master.output();
    assert!(
        out.contains(&format!("current worker {worker}")) && out.contains("exited with code 137"),
        "{out}"
    );
}

/// One command on the master CLI (`-S`); the whole answer.
fn master_cli(path: &Path, cmd: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Receives one notify datagram (at most 10 s).
fn datagram(sock: &UnixDatagram) -> String {
    let mut b = [0u8; 4096];
    let n = sock
        .recv(&mut b)
        .expect("no sd_notify datagram within 10 s");
    String::from_utf8_lossy(&b[..n]).into_owned()
}

#[test]
fn a_systemd_master_says_ready_reloading_ready() {
    let redis = RedisServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = root.path().join("ringlb.toml");
    let pidfile = root.path().join("ringlb.pid");
    let notify = root.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::fs::write(&cfg, config(port, redis.port, 1, root.path())).unwrap();
    let mut master = Ringlb::start_argv_env(
        tempfile::tempdir().unwrap(),
        cfg.clone(),
        &argv(&[
            "-Ws",
            "-f",
            cfg.to_str().unwrap(),
            "-p",
            pidfile.to_str().unwrap(),
        ]),
        &[("NOTIFY_SOCKET", notify.to_str().unwrap())],
    );
    let first = datagram(&sock);
    assert!(first.contains("READY=1"), "{first}");
    assert!(
        first.contains(&format!("MAINPID={}", master.pid())),
        "{first}"
    );
    // The reload as systemd's ExecReload does it: SIGUSR2 to $MAINPID.
    master.signal(libc::SIGUSR2);
    let reloading = datagram(&sock);
    assert!(
        reloading.contains("RELOADING=1") && reloading.contains("MONOTONIC_USEC="),
        "{reloading}"
    );
    let ready = datagram(&sock);
    assert!(
        ready.contains("READY=1") && ready.contains("STATUS=Ready"),
        "{ready}"
    );
    ping_once(port).unwrap();
    // A failed reload: RELOADING=1, then READY=1 with the failure in STATUS.
    std::fs::write(&cfg, Cfg::new().global("no-such-key = 1").build()).unwrap();
    master.signal(libc::SIGUSR2);
    assert!(datagram(&sock).contains("RELOADING=1"));
    let failed = datagram(&sock);
    assert!(
        failed.contains("READY=1") && failed.contains("STATUS=Reload failed"),
        "{failed}"
    );
    ping_once(port).unwrap();
    let st = master.stop(Duration::from_secs(10));
    assert!(st.is_some_and(|s| s.success()), "{}", master.output());
    assert!(datagram(&sock).contains("STOPPING=1"));
    // Only the master speaks to systemd: nothing else arrived.
    sock.set_nonblocking(true).unwrap();
    let mut b = [0u8; 512];
    assert!(sock.recv(&mut b).is_err(), "unexpected extra datagram");
}

/// Figures for `bench/RESULTS.md` (run by hand: `cargo test --test reload
/// reload_figures -- --ignored --nocapture`): connections attempted and failed
/// during 20 reloads under the same client loop, for ringlb (`-x -sf`, plain
/// `-sf`) and the installed HAProxy (`-x -sf`, plain `-sf`). Plain `-sf` loses
/// what waits in the old sockets' queues unless `net.ipv4.tcp_migrate_req=1`
/// (whatever the host has: printed).
#[test]
#[ignore]
fn reload_figures() {
    let redis = RedisServer::start(&[]);
    let migrate = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req")
        .unwrap_or_default()
        .trim()
        .to_string();
    eprintln!("net.ipv4.tcp_migrate_req = {migrate}");
    for take_over in [true, false] {
        let root = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = root.path().join("ringlb.toml");
        std::fs::write(&cfg, config(port, redis.port, 2, root.path())).unwrap();
        let c = cfg.to_str().unwrap();
        let admin = root.path().join("admin.sock");
        let mut current = start(&cfg, &["-f", c, "-db"]);
        let load = ConnLoop::start(port);
        load.wait_for(20);
        let mut former = Vec::new();
        for _ in 0..RELOADS {
            let old = current.pid().to_string();
            let mut args = vec!["-f", c, "-db", "-sf", &old];
            if take_over {
                args.extend(["-x", admin.to_str().unwrap()]);
            }
            let next = start(&cfg, &args);
            former.push(std::mem::replace(&mut current, next));
            load.wait_for(20);
        }
        let (attempts, failures, slowest) = load.finish();
        eprintln!(
            "ringlb {}: {RELOADS} reloads, {attempts} connections, {} failed, slowest {slowest:.1} ms",
            if take_over { "-x -sf" } else { "-sf" },
            failures.len()
        );
    }
    for take_over in [true, false] {
        let root = tempfile::tempdir().unwrap();
        let port = free_port();
        let sock = root.path().join("hap.sock");
        let defaults = haproxy_defaults("tcp", "2s", "60s");
        let cfg = root.path().join("haproxy.cfg");
        std::fs::write(
            &cfg,
            format!(
                "global\n    stats socket {} mode 600 level admin expose-fd listeners\n    nbthread 2\n\
                 {defaults}\
                 listen redis\n    bind 127.0.0.1:{port}\n    server r1 127.0.0.1:{}\n",
                sock.display(),
                redis.port
            ),
        )
        .unwrap();
        let spawn = |extra: &[String]| {
            let mut child = std::process::Command::new("haproxy")
                .args(["-db", "-f", cfg.to_str().unwrap()])
                .args(extra)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("haproxy");
            // Ready once the stats socket answers with the new pid.
            let pid = child.id();
            let ready = wait_until(Duration::from_secs(10), || {
                let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) else {
                    return false;
                };
                let mut out = String::new();
                s.write_all(b"show info\n").is_ok()
                    && s.read_to_string(&mut out).is_ok()
                    && out.contains(&format!("\nPid: {pid}\n"))
            });
            if !ready {
                let _ = child.kill();
                panic!("haproxy did not become ready");
            }
            child
        };
        let mut current = spawn(&[]);
        let load = ConnLoop::start(port);
        load.wait_for(20);
        let mut former = Vec::new();
        for _ in 0..RELOADS {
            let mut extra = vec!["-sf".to_string(), current.id().to_string()];
            if take_over {
                extra.extend(["-x".to_string(), sock.display().to_string()]);
            }
            let next = spawn(&extra);
            former.push(std::mem::replace(&mut current, next));
            load.wait_for(20);
        }
        let (attempts, failures, slowest) = load.finish();
        eprintln!(
            "haproxy {}: {RELOADS} reloads, {attempts} connections, {} failed, slowest {slowest:.1} ms",
            if take_over { "-x -sf" } else { "-sf" },
            failures.len()
        );
        for mut c in former.into_iter().chain([current]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The certificate `openssl s_client` is shown by 127.0.0.1:`port` (its
/// subject line).
fn served_subject(port: u16, ca: &str) -> String {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "a.test", "-CAfile", ca])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or("")
        .replace(' ', "")
}

/// Certificates are read again by a reload (HAProxy's way: the new worker
/// loads them): replace the PEM a `bind ... ssl crt` names, reload, and new
/// handshakes get the new certificate; a broken one fails the reload and the
/// old certificate is still served.
#[test]
fn a_reload_serves_the_replaced_certificate() {
    if !support::tls::require(&["openssl"]) {
        return;
    }
    let pki = support::tls::Pki::new();
    let echo = TestServer::start("echo", Behaviour::Echo);
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = root.path().join("site.pem");
    std::fs::copy(pki.pem("1-a.pem"), &site).unwrap();
    let cfg = root.path().join("ringlb.toml");
    let pidfile = root.path().join("ringlb.pid");
    let text = base(1, root.path())
        .listen(
            Proxy::new("tls")
                .bind_with(
                    format!("127.0.0.1:{port}"),
                    &format!("ssl = {{ crt = {} }}", support::config::q(site.display())),
                )
                .server("e", echo.addr.to_string()),
        )
        .build();
    std::fs::write(&cfg, text).unwrap();
    let master = start_master(&cfg, &pidfile, &[]);
    let ca = pki.ca();
    assert_eq!(
        served_subject(port, &ca),
        "subject=CN=a.test",
        "{}",
        master.output()
    );
    std::fs::copy(pki.pem("2-b.pem"), &site).unwrap();
    let (code, out, err) = reload(&pidfile);
    assert_eq!(code, 0, "{out}{err}\n{}", master.output());
    assert_eq!(served_subject(port, &ca), "subject=CN=b.test");
    // A certificate file that is no PEM: the reload fails, naming the file,
    // and the current worker keeps serving b.test's certificate.
    std::fs::write(&site, "not a certificate\n").unwrap();
    let (code, out, err) = reload(&pidfile);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("site.pem"), "{err}");
    assert_eq!(served_subject(port, &ca), "subject=CN=b.test");
}
