//! The runtime API and the stats CSV through the real binary, with `socat` as the
//! client HAProxy users script with: the CSV header is HAProxy 2.6's own (taken
//! from the installed haproxy in the same test), counters add up to what the
//! servers saw, and `set server … state|weight` changes what every shard does.

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::clients::{admin_socket, curl, server_status, socat, stat_column};
use support::servers::Haproxy;
use support::*;

/// `app`'s server `name`, checked every 100 ms at an address where nothing
/// listens (so it goes DOWN at its first check).
fn checked_dead_server(app: Proxy, name: &str) -> Proxy {
    app.server_with(
        name,
        "127.0.0.1:1",
        r#"check = true, inter = "100ms", fall = 1"#,
    )
}

#[test]
fn runtime_api_and_csv_as_haproxy() {
    let a = TestServer::start("a", Behaviour::Hello);
    let b = TestServer::start("b", Behaviour::Hello);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (sock, cfg) = admin_socket(dir.path());
    let cfg = cfg
        .timeouts("2s", "10s", "10s")
        .listen(round_robin_app(port, &[&a, &b]))
        .build();
    let lb = Ringlb::start(&cfg, &["--shards", "2"]);

    // The CSV header is HAProxy 2.6's, column for column.
    let hport = free_port();
    let hsock = dir.path().join("haproxy.sock");
    let _h = Haproxy::start(
        &format!(
            "global\n  stats socket {} mode 600 level admin\ndefaults\n  mode tcp\n  timeout connect 1s\n  \
             timeout client 1s\n  timeout server 1s\nlisten app\n  bind 127.0.0.1:{hport}\n  server a 127.0.0.1:1\n",
            hsock.display(),
        ),
        &[hport],
    );
    // Both sockets answer once their process is ready (bounded wait).
    let mut theirs = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        theirs = socat(&hsock, "show stat");
        !theirs.is_empty()
    }));
    let mut ours = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        ours = socat(&sock, "show stat");
        !ours.is_empty()
    }));
    assert_eq!(
        ours.lines().next().unwrap(),
        theirs.lines().next().unwrap(),
        "CSV header differs from HAProxy 2.6's"
    );
    let width = ours.lines().next().unwrap().split(',').count();
    for l in ours.lines().skip(1).filter(|l| !l.is_empty()) {
        assert_eq!(l.split(',').count(), width, "row width: {l}");
    }
    let accepted_before = a.accepted() + b.accepted();

    // Counters add up to what the servers saw.
    let n = 10;
    for _ in 0..n {
        which_server(port);
    }
    let stot = |csv: &str, s: &str| stat_column(csv, "app", s, "stot").parse::<u64>().unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        let csv = socat(&sock, "show stat");
        stot(&csv, "a") + stot(&csv, "b") == n
            && stat_column(&csv, "app", "BACKEND", "stot") == n.to_string()
    }));
    let csv = socat(&sock, "show stat");
    assert_eq!(
        stot(&csv, "a") + stot(&csv, "b"),
        a.accepted() + b.accepted() - accepted_before
    );
    assert_eq!(stat_column(&csv, "app", "a", "status"), "no check");
    assert_eq!(stat_column(&csv, "app", "BACKEND", "algo"), "roundrobin");
    assert_eq!(stat_column(&csv, "app", "FRONTEND", "status"), "OPEN");
    // HAProxy's session-rate counters (sessions in a second; its maximum).
    let max: u64 = stat_column(&csv, "app", "FRONTEND", "rate_max")
        .parse()
        .unwrap();
    assert!((1..=n).contains(&max), "rate_max {max}");
    let srv_max: u64 = stat_column(&csv, "app", "a", "rate_max").parse().unwrap();
    assert!(srv_max >= 1 && srv_max <= max, "{srv_max} vs {max}");

    // MAINT through the socket: no new session reaches a, from either shard.
    assert_eq!(socat(&sock, "set server app/a state maint"), "\n");
    let a0 = a.accepted();
    for _ in 0..20 {
        assert_eq!(which_server(port), "b");
    }
    assert_eq!(a.accepted(), a0);
    assert_eq!(
        stat_column(&socat(&sock, "show stat"), "app", "a", "status"),
        "MAINT"
    );
    assert!(socat(&sock, "show servers state app").contains("\n1 app 1 a 127.0.0.1 2 1 1 1 "));
    assert!(wait_until(Duration::from_secs(5), || lb.output().contains(
        "Server app/a is going DOWN for maintenance. 1 active and 0 backup servers left."
    )));

    // Back to READY: a takes sessions again; then weight 0: b takes them all.
    socat(&sock, "set server app/a state ready");
    let names: Vec<String> = (0..10).map(|_| which_server(port)).collect();
    assert!(names.iter().any(|n| n == "a"), "{names:?}");
    assert_eq!(socat(&sock, "set server app/a weight 0"), "\n");
    assert_eq!(socat(&sock, "get weight app/a"), "0 (initial 1)\n\n");
    for _ in 0..10 {
        assert_eq!(which_server(port), "b");
    }

    // `set server addr`: server a moves to where b listens; every shard's new
    // sessions follow it.
    let (bip, bport) = (b.addr.ip().to_string(), b.addr.port().to_string());
    assert_eq!(
        socat(&sock, &format!("set server app/a addr {bip} port {bport}")),
        format!(
            "port changed from '{}' to '{bport}' by 'stats socket command'\n\n",
            a.addr.port()
        )
    );
    assert_eq!(socat(&sock, "set server app/a weight 1"), "\n");
    let a_before = a.accepted();
    for _ in 0..10 {
        assert_eq!(
            which_server(port),
            "b",
            "a's sessions now reach b's address"
        );
    }
    assert_eq!(a.accepted(), a_before);
    assert_eq!(
        stat_column(&socat(&sock, "show stat"), "app", "a", "addr"),
        b.addr.to_string()
    );
    socat(
        &sock,
        &format!(
            "set server app/a addr {} port {}",
            a.addr.ip(),
            a.addr.port()
        ),
    );
    socat(&sock, "set server app/a weight 0");
    assert_eq!(
        socat(&sock, "set server app/a addr not-an-ip"),
        "Invalid addr 'not-an-ip'\n\n"
    );
    // Bad input answers as HAProxy and changes nothing.
    for (command, answer) in [
        ("set server app/zz state maint", "No such server.\n\n"),
        ("set server nope/a state maint", "No such backend.\n\n"),
        (
            "set server app/b state bogus",
            "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n",
        ),
        (
            "set weight app/b 300",
            "Absolute weight can only be between 0 and 256 inclusive.\n\n",
        ),
    ] {
        assert_eq!(socat(&sock, command), answer, "{command}");
    }
    assert!(socat(&sock, "frobnicate").starts_with("Unknown command"));
    assert_eq!(which_server(port), "b", "b still serves");
    // Several commands on one line.
    let two = socat(&sock, "get weight app/a; get weight app/b");
    assert_eq!(two, "0 (initial 1)\n\n1 (initial 1)\n\n");
    assert!(socat(&sock, "show info").starts_with("Name: ringlb\n"));
    // Per-shard activity: both shards ran, small messages went over the ring
    // copy path, and no io-wq worker thread exists.
    let act = socat(&sock, "show activity");
    let line = |name: &str| -> Vec<u64> {
        let l = act
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {act}"));
        l.split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .map(|w| w.parse().unwrap())
            .collect()
    };
    let loops = line("loops");
    assert_eq!(loops.len(), 3, "total and two shards: {act}");
    assert!(loops[1] > 0 && loops[2] > 0, "{act}");
    assert!(line("ring_copy_bytes")[0] > 0, "{act}");
    assert_eq!(line("iou_wrk_threads"), [0], "{act}");
    // `shutdown sessions server`: a session held on b is closed.
    let mut held = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(read_line(&mut held), "b");
    assert_eq!(socat(&sock, "shutdown sessions server app/b"), "\n");
    held.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(std::io::Read::read(&mut held, &mut byte), Ok(0)),
        "the session on b was shut down"
    );
    // `clear counters` zeroes the maxima, `clear counters all` the totals.
    socat(&sock, "clear counters");
    let csv = socat(&sock, "show stat");
    assert_eq!(stat_column(&csv, "app", "a", "smax"), "0");
    assert_ne!(stat_column(&csv, "app", "a", "stot"), "0");
    socat(&sock, "clear counters all");
    let csv = socat(&sock, "show stat");
    assert_eq!(stat_column(&csv, "app", "a", "stot"), "0");
    assert_eq!(stat_column(&csv, "app", "BACKEND", "bout"), "0");
    // `show stat json` parses, in HAProxy's shape (same keys as haproxy's own).
    let shape = |doc: &str| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import json,sys; d=json.load(sys.stdin); o=d[0][0]; \
                 print(sorted(o), sorted(o['tags']), sorted(o['value']), sorted({f['objType'] for r in d for f in r}))",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(doc.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "not JSON: {doc}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ours_json = shape(&socat(&sock, "show stat json"));
    let theirs_json = shape(&socat(&hsock, "show stat json"));
    assert_eq!(ours_json, theirs_json);
    assert!(
        ours_json.contains("'Backend', 'Frontend', 'Server'"),
        "{ours_json}"
    );
}

#[test]
fn the_tutorials_stats_page_with_auth_refresh_and_csv() {
    let a = TestServer::start("a", Behaviour::Hello);
    let (port, sport) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let (sock, cfg) = admin_socket(dir.path());
    // The tutorial's `listen stats` (bind *:1080, stats uri /stats, refresh 30s,
    // realm, auth admin:admin), on loopback and an ephemeral port.
    let cfg = cfg
        .timeouts("2s", "10s", "10s")
        .listen(checked_dead_server(
            Proxy::new("app").port(port).server("a", a.addr),
            "gone",
        ))
        .listen(Proxy::new("stats").port(sport).mode("http").stats(
            r#"uri = "/stats", refresh = "30s", realm = "HAProxy Stats", auth = ["admin:admin"]"#,
        ))
        .build();
    let _lb = Ringlb::start(&cfg, &[]);
    which_server(port);
    let url = format!("http://127.0.0.1:{sport}/stats");
    let (head, _) = curl(&[&url]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.contains("WWW-Authenticate: Basic realm=\"HAProxy Stats\""),
        "{head}"
    );
    let (head, _) = curl(&["-u", "admin:wrong", &url]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // The checked dead server goes DOWN; the page shows it so.
    assert!(wait_until(Duration::from_secs(5), || {
        server_status(&sock, "app", "gone") == "DOWN"
    }));
    let (head, body) = curl(&["-u", "admin:admin", &url]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    assert!(body.contains("<table class=\"tbl\" id=\"px-app\">"));
    assert!(
        body.contains("<tr class=\"active_up\" data-sv=\"a\">"),
        "{body}"
    );
    assert!(
        body.contains("<tr class=\"active_down\" data-sv=\"gone\">"),
        "{body}"
    );
    assert!(
        body.contains("L4CON in "),
        "check status on the row: {body}"
    );
    let (_, csv) = curl(&["-u", "admin:admin", &format!("{url};csv;norefresh")]);
    assert_eq!(
        csv.lines().next(),
        socat(&sock, "show stat").lines().next(),
        "the page's CSV is the socket's"
    );
    assert_eq!(stat_column(&csv, "app", "a", "stot"), "1");
    // Prometheus, with HAProxy's exporter names, valid for promtool.
    let (head, metrics) = curl(&[&format!("http://127.0.0.1:{sport}/metrics")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        metrics.contains("haproxy_server_status{proxy=\"app\",server=\"gone\",state=\"DOWN\"} 1\n")
    );
    assert!(metrics.contains("haproxy_server_sessions_total{proxy=\"app\",server=\"a\"} 1\n"));
    assert!(metrics.contains("haproxy_frontend_current_sessions{proxy=\"app\"}"));
    assert!(metrics.contains("ringlb_io_wq_threads 0\n"), "{metrics}");
    assert!(metrics.contains("ringlb_shard_ring_submissions_total{shard=\"0\"}"));
    // ringlb's own latency percentiles, merged across shards on read.
    assert!(
        metrics.contains(
            "ringlb_server_total_time_seconds{proxy=\"app\",server=\"a\",quantile=\"0.99\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("ringlb_server_total_time_seconds_count{proxy=\"app\",server=\"a\"} 1\n")
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    {
        use std::io::Write;
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(metrics.as_bytes())
            .unwrap();
    }
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Another URI on the stats listener: HAProxy's 503.
    let (head, _) = curl(&[&format!("http://127.0.0.1:{sport}/other")]);
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
}

/// Headless Chromium renders the page of a running ringlb with an UP, a DOWN,
/// a MAINT and a backup server: the DOM has one row per server with HAProxy's
/// state classes, and the screenshot is kept as a test artifact
/// (`target/test-artifacts/stats-page.png`).
#[test]
fn chromium_shows_the_stats_page_with_rows_coloured_by_state() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is missing and CI=true"
        );
        eprintln!("SKIPPED: chromium is not installed (Debian package chromium)");
        return;
    };
    let up = TestServer::start("up", Behaviour::Hello);
    let (port, sport) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let (sock, cfg) = admin_socket(dir.path());
    let cfg = cfg
        .timeouts("2s", "10s", "10s")
        .listen(
            checked_dead_server(Proxy::new("app").port(port).server("up", up.addr), "down")
                .server("maint", up.addr)
                .server_with("spare", up.addr, "backup = true"),
        )
        .listen(
            Proxy::new("stats")
                .port(sport)
                .stats(r#"uri = "/stats", refresh = "30s""#),
        )
        .build();
    let _lb = Ringlb::start(&cfg, &[]);
    assert_eq!(socat(&sock, "set server app/maint state maint"), "\n");
    assert!(wait_until(Duration::from_secs(5), || {
        server_status(&sock, "app", "down") == "DOWN"
    }));
    for _ in 0..3 {
        which_server(port);
    }
    let url = format!("http://127.0.0.1:{sport}/stats");
    let profile = dir.path().join("chromium");
    let base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let dom = Command::new(chromium)
        .args(base)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for (sv, class) in [
        ("up", "active_up"),
        ("down", "active_down"),
        ("maint", "maintain"),
        ("spare", "backup_up"),
        ("BACKEND", "backend"),
        ("FRONTEND", "frontend"),
    ] {
        assert!(
            dom.contains(&format!("<tr class=\"{class}\" data-sv=\"{sv}\">")),
            "row {sv} as {class} in the rendered DOM:\n{dom}"
        );
    }
    assert!(dom.contains("L4CON in "), "check detail shown");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("stats-page.png");
    let _ = std::fs::remove_file(&png);
    let shot = Command::new(chromium)
        .args(base)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args([
            "--window-size=1500,700",
            &format!("--screenshot={}", png.display()),
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "a real PNG"
    );
}

/// `slowstart`: a server back from DOWN takes its weight in steps, not at once
/// (HAProxy's warm-up), as `show stat` shows while it ramps.
#[test]
fn slowstart_ramps_the_weight_of_a_server_back_from_down() {
    let port = free_port();
    let dead = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (sock, cfg) = admin_socket(dir.path());
    let cfg = cfg
        .timeouts("1s", "10s", "10s")
        .listen(Proxy::new("app").port(port).server_with(
            "w",
            format!("127.0.0.1:{dead}"),
            r#"weight = 100, check = true, inter = "50ms", rise = 1, fall = 1, slowstart = "2s""#,
        ))
        .build();
    let _lb = Ringlb::start(&cfg, &[]);
    let csv = || socat(&sock, "show stat");
    assert!(wait_until(Duration::from_secs(5), || {
        server_status(&sock, "app", "w") == "DOWN"
    }));
    // The server comes back: its weight ramps from a few % to 100.
    let _back = std::net::TcpListener::bind(("127.0.0.1", dead)).unwrap();
    let mut seen = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        let c = csv();
        if stat_column(&c, "app", "w", "status") != "UP" {
            return false;
        }
        let w: u32 = stat_column(&c, "app", "w", "weight").parse().unwrap();
        if seen.last() != Some(&w) {
            seen.push(w);
        }
        w == 100
    }));
    assert!(seen.len() >= 3, "weights seen while ramping: {seen:?}");
    assert!(seen[0] < 50, "starts low: {seen:?}");
    assert!(seen.windows(2).all(|p| p[0] < p[1]), "only grows: {seen:?}");
}
