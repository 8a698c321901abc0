//! The tutorial's keepalived chapter with ringlb, for real: two nodes and a
//! client in network namespaces this test creates, joined by a bridge in a
//! fourth; keepalived (Debian package) and ringlb on each node, run from
//! `scripts/keepalived/keepalived-{master,backup}.conf`; a client that asks
//! the virtual IP which node answers. The master's ringlb is killed: the
//! virtual IP moves to the backup and requests succeed there within a few
//! seconds; it comes back: the master takes the address back (preemption).
//!
//! Needs root (namespaces), `ip` (iproute2), `keepalived` and `curl`. Where
//! namespaces are refused the test skips loudly; under `CI=true` it fails.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{have, ringlb_bin, wait_until, Cfg, Proxy};

const VIP: &str = "10.231.0.50";

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn must(args: &[&str]) {
    assert!(ip(args), "ip {}", args.join(" "));
}

/// The namespaces, removed (with what runs in them) on drop.
struct Net {
    names: Vec<String>,
}

impl Net {
    /// `hub` (a bridge), `n1`, `n2` (the pair, 10.231.0.1/.2) and `cli`
    /// (10.231.0.100), each node's `eth0` on the bridge.
    fn create() -> Option<Net> {
        let tag = format!("rlbka{}", std::process::id());
        let names: Vec<String> = ["hub", "n1", "n2", "cli"]
            .iter()
            .map(|n| format!("{tag}{n}"))
            .collect();
        let net = Net { names };
        if !ip(&["netns", "add", &net.ns("hub")]) {
            return None;
        }
        for n in ["n1", "n2", "cli"] {
            must(&["netns", "add", &net.ns(n)]);
        }
        let hub = net.ns("hub");
        must(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &hub, "link", "set", "br0", "up"]);
        for (n, addr) in [
            ("n1", "10.231.0.1"),
            ("n2", "10.231.0.2"),
            ("cli", "10.231.0.100"),
        ] {
            let ns = net.ns(n);
            let port = format!("p{n}");
            must(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            must(&["-n", &hub, "link", "set", &port, "master", "br0", "up"]);
            must(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            must(&["-n", &ns, "link", "set", "eth0", "up"]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        Some(net)
    }

    fn ns(&self, short: &str) -> String {
        let i = ["hub", "n1", "n2", "cli"]
            .iter()
            .position(|n| *n == short)
            .unwrap();
        self.names[i].clone()
    }

    /// A command run inside namespace `short`.
    fn exec(&self, short: &str, prog: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(short)]).arg(prog);
        c
    }

    fn holds_vip(&self, short: &str) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.ns(short), "-4", "addr", "show", "dev", "eth0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&format!("inet {VIP}/"))
    }

    /// What the virtual IP answers the client on port 9001 (empty when
    /// nothing does).
    fn ask(&self) -> String {
        self.ask_port(9001)
    }

    fn ask_port(&self, port: u16) -> String {
        let out = self
            .exec("cli", Path::new("curl"))
            .args(["-s", "--max-time", "1", &format!("http://{VIP}:{port}/")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in &self.names {
            ip(&["netns", "del", n]);
        }
    }
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ringlb on node `n` with the tutorial's `bind *:9001`, and the virtual IP
/// itself on 9002 with `freebind` (the backup binds it before it holds it),
/// answering its own name; waits for its readiness line and writes its pid
/// where the node's check looks.
fn start_ringlb(net: &Net, n: &str, dir: &Path) -> Proc {
    let cfg = dir.join(format!("{n}.toml"));
    std::fs::write(
        &cfg,
        Cfg::new()
            .mode("http")
            .timeouts("1s", "5s", "5s")
            .frontend(
                Proxy::new("web")
                    .bind("*:9001")
                    .bind_with(format!("{VIP}:9002"), "freebind = true")
                    .extra(format!(
                        "http-request = [\"return status 200 content-type text/plain string {n}\"]"
                    ))
                    .default_backend("app"),
            )
            .backend(Proxy::new("app").server("s", "127.0.0.1:1"))
            .build(),
    )
    .unwrap();
    let mut child = net
        .exec(n, &ringlb_bin())
        .args(["run", "-f", cfg.to_str().unwrap(), "--shards", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ringlb");
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.starts_with("ringlb ready") {
                let _ = tx.send(());
            }
        }
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(10)).is_ok(),
        "ringlb on {n} did not become ready"
    );
    // `ip netns exec` execs: the child's pid is ringlb's.
    std::fs::write(dir.join(format!("{n}.pid")), child.id().to_string()).unwrap();
    Proc(child)
}

/// keepalived on node `n` from the shipped file: the interface is `eth0`
/// there too; the virtual IP is the test's; and the check looks at this
/// node's ringlb by pid, because both nodes share this machine's process
/// table, where `killall -0 ringlb` would see the other node's ringlb.
fn start_keepalived(net: &Net, n: &str, file: &str, dir: &Path) -> Proc {
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("scripts/keepalived")
            .join(file),
    )
    .unwrap();
    let check = dir.join(format!("chk-{n}.sh"));
    std::fs::write(
        &check,
        format!(
            "#!/bin/sh\nexec kill -0 \"$(cat {})\"\n",
            dir.join(format!("{n}.pid")).display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&check, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf_text = shipped
        .replace(
            "script \"/usr/bin/killall -0 ringlb\"",
            &format!("script \"{}\"", check.display()),
        )
        .replace("192.168.8.201", &format!("{VIP}/24"))
        .replace("interval 2", "interval 1");
    assert!(
        conf_text.contains(&check.display().to_string()),
        "{conf_text}"
    );
    let conf = dir.join(format!("keepalived-{n}.conf"));
    std::fs::write(&conf, conf_text).unwrap();
    let pid = |what: &str| dir.join(format!("{n}-{what}.pid"));
    let child = net
        .exec(n, Path::new("keepalived"))
        .args(["--dont-fork", "--log-console", "--vrrp", "-f"])
        .arg(&conf)
        .arg("-p")
        .arg(pid("main"))
        .arg("-r")
        .arg(pid("vrrp"))
        .arg("-c")
        .arg(pid("checkers"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("keepalived (Debian package keepalived) must be installed");
    Proc(child)
}

#[test]
fn the_virtual_ip_follows_a_live_ringlb_and_comes_back() {
    if !have("keepalived") || !have("curl") || !have("ip") {
        return;
    }
    let Some(net) = Net::create() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "network namespaces are refused here and CI=true"
        );
        eprintln!("SKIPPED: cannot create network namespaces (not root?)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut lb1 = Some(start_ringlb(&net, "n1", dir.path()));
    let _lb2 = start_ringlb(&net, "n2", dir.path());
    let _ka1 = start_keepalived(&net, "n1", "keepalived-master.conf", dir.path());
    let _ka2 = start_keepalived(&net, "n2", "keepalived-backup.conf", dir.path());

    // The master (101 + 2) holds the address; the client reaches its ringlb.
    assert!(
        wait_until(Duration::from_secs(20), || net.holds_vip("n1")
            && net.ask() == "n1"),
        "the master never served the virtual IP (n1 holds it: {}, n2: {}, answer {:?})",
        net.holds_vip("n1"),
        net.holds_vip("n2"),
        net.ask()
    );
    assert!(!net.holds_vip("n2"));

    // Its ringlb dies: 101 < 100 + 2, the backup takes over.
    let t = Instant::now();
    drop(lb1.take());
    assert!(
        wait_until(Duration::from_secs(20), || net.ask() == "n2"),
        "the backup never answered on the virtual IP"
    );
    let failover = t.elapsed();
    assert!(net.holds_vip("n2") && !net.holds_vip("n1"));
    assert_eq!(net.ask_port(9002), "n2", "the freebind listener on the VIP");
    eprintln!("failover: requests answered by the backup after {failover:?}");

    // It comes back: 103 > 102, the master takes the address back.
    let _lb1 = start_ringlb(&net, "n1", dir.path());
    assert!(
        wait_until(Duration::from_secs(20), || net.holds_vip("n1")
            && net.ask() == "n1"),
        "the master did not take the virtual IP back"
    );
    assert!(!net.holds_vip("n2"));
}
