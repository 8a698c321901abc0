//! The runtime API's view of live sessions and captured errors, through the
//! real binary with `socat`, and the stats page's admin form with `curl`:
//! `show sess` lists exactly the sessions clients hold open (asked of every
//! shard), `shutdown session` closes one, `show errors` shows the bytes of
//! the last bad request and response, and a POST from the page moves a server
//! to MAINT as HAProxy's page does.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::clients::socat;
use support::servers::RedisServer;
use support::*;

/// A client connected through ringlb to redis, proven by a PING round trip
/// (so its session has a server).
fn redis_client(port: u16) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"PING\r\n").unwrap();
    let mut b = [0u8; 7];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"+PONG\r\n");
    c
}

/// The session lines of a `show sess` answer.
fn sessions(answer: &str) -> Vec<String> {
    answer
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn show_sess_lists_live_sessions_and_shutdown_session_closes_one() {
    let redis = RedisServer::start(&[]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (sock, cfg) = support::clients::admin_socket(dir.path());
    let log = dir.path().join("sessions.log");
    let cfg = cfg
        .log(log.display())
        .log_global("tcplog")
        .timeouts("2s", "30s", "30s")
        .listen(
            Proxy::new("cache")
                .port(port)
                .server("r1", format!("127.0.0.1:{}", redis.port)),
        )
        .build();
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    assert_eq!(socat(&sock, "show sess"), "\n", "no session yet");

    let mut clients: Vec<TcpStream> = (0..3).map(|_| redis_client(port)).collect();
    let answer = socat(&sock, "show sess");
    let lines = sessions(&answer);
    assert_eq!(lines.len(), 3, "{answer}");
    assert!(answer.ends_with("\n\n"), "{answer:?}");
    for c in &clients {
        let src = format!(" src={} ", c.local_addr().unwrap());
        let line = lines
            .iter()
            .find(|l| l.contains(&src))
            .unwrap_or_else(|| panic!("no session from{src}in\n{answer}"));
        let (id, rest) = line.split_once(": ").unwrap();
        assert!(id.starts_with("0x"), "{line}");
        assert!(
            rest.starts_with(&format!("proto=tcpv4{src}fe=cache be=cache srv=r1 ts=")),
            "{line}"
        );
        assert!(rest.contains(" age="), "{line}");
    }

    // The same fields in the same order as HAProxy 2.6's line for a session
    // of the same kind (one client to the same redis through haproxy).
    let (hport, hsock) = (free_port(), dir.path().join("haproxy.sock"));
    let _h = support::servers::Haproxy::start(
        &format!(
            "global\n  stats socket {} level admin\ndefaults\n  mode tcp\n  timeout connect 2s\n  \
             timeout client 30s\n  timeout server 30s\nlisten cache\n  bind 127.0.0.1:{hport}\n  \
             server r1 127.0.0.1:{}\n",
            hsock.display(),
            redis.port
        ),
        &[hport],
    );
    let hc = redis_client(hport);
    let hsrc = format!(" src={} ", hc.local_addr().unwrap());
    let theirs = socat(&hsock, "show sess");
    let their_line = theirs
        .lines()
        .find(|l| l.contains(&hsrc))
        .unwrap_or_else(|| panic!("{theirs}"));
    let keys = |l: &str| -> Vec<String> {
        l.split(' ')
            .skip(1)
            .map(|w| w.split(['=', '[']).next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        keys(&lines[0]),
        keys(their_line),
        "ours: {}\nhaproxy's: {their_line}",
        lines[0]
    );
    assert!(their_line.contains(&format!("{hsrc}fe=cache be=cache srv=r1 ")));
    drop(hc);

    // One session in detail, then closed by id: its client sees the end.
    let first = format!(" src={} ", clients[0].local_addr().unwrap());
    let line = lines.iter().find(|l| l.contains(&first)).unwrap();
    let id = line.split_once(':').unwrap().0.to_string();
    let detail = socat(&sock, &format!("show sess {id}"));
    assert!(
        detail.starts_with(&format!("{id}: [")),
        "show sess ID: {detail}"
    );
    assert!(detail.contains(&format!("source={}\n", clients[0].local_addr().unwrap())));
    assert!(
        detail.contains("  backend=cache (id=1 mode=tcp)\n"),
        "{detail}"
    );
    assert!(detail.contains(&format!(
        "  server=r1 (id=1) addr=127.0.0.1:{}\n",
        redis.port
    )));
    assert_eq!(socat(&sock, &format!("shutdown session {id}")), "\n");
    let mut b = [0u8; 16];
    assert_eq!(
        clients[0].read(&mut b).unwrap_or(0),
        0,
        "the client's connection is closed"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        sessions(&socat(&sock, "show sess")).len() == 2
    }));
    let left = socat(&sock, "show sess");
    assert!(!left.contains(&first), "{left}");
    // Logged as HAProxy logs a killed session: `K`, in the data phase.
    let from = format!("{} [", clients[0].local_addr().unwrap());
    assert!(
        wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains(&from) && l.contains(" KD "))
        }),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The others still work.
    for c in clients.iter_mut().skip(1) {
        c.write_all(b"PING\r\n").unwrap();
        let mut b = [0u8; 7];
        c.read_exact(&mut b).unwrap();
    }

    // HAProxy's answers to a session that is gone and to no session at all.
    assert_eq!(
        socat(&sock, &format!("shutdown session {id}")),
        "No such session (use 'show sess').\n\n"
    );
    assert_eq!(
        socat(&sock, "shutdown session"),
        "Session pointer expected (use 'show sess').\n\n"
    );
    assert_eq!(
        socat(&sock, &format!("show sess {id}")),
        "Session not found.\n\n"
    );
    drop(clients);
    assert!(wait_until(Duration::from_secs(5), || {
        socat(&sock, "show sess") == "\n"
    }));
}

/// `show errors` with what HAProxy-specific text cannot match (dates, proxy
/// ids, client ports, its mux's flags and buffer wrap point) blanked out.
fn comparable(show_errors: &str) -> String {
    let mut out = String::new();
    for l in show_errors.lines() {
        let mut l = l.to_string();
        if let (Some(a), Some(b)) = (l.find('['), l.find(']')) {
            if a < b && !l.starts_with("  0") {
                l.replace_range(a..=b, "[DATE]");
            }
        }
        if l.starts_with("  H1 connection flags") {
            l = "  H1 connection flags".into();
        }
        if let Some(i) = l.find(", H1 msg flags") {
            l.truncate(i);
        }
        if let Some(i) = l.find(", src ") {
            l.truncate(i);
        }
        if let Some(i) = l.find(", wraps at") {
            let j = l.find(", error at").unwrap();
            l.replace_range(i..j, "");
        }
        // ` (#5)` → ` (#)`: HAProxy numbers its internal proxies too.
        while let Some(i) = l.find("(#").filter(|&i| !l[i..].starts_with("(#)")) {
            let j = i + l[i..].find(')').unwrap();
            l.replace_range(i + 2..j, "");
        }
        out += &l;
        out.push('\n');
    }
    out
}

#[test]
fn show_errors_shows_the_bad_bytes_as_haproxy_does() {
    use std::sync::{Arc, Mutex};
    use support::http::{haproxy_status, start_origin_with, Haproxy};
    let origin = start_origin_with(Arc::new(Mutex::new(
        b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 0\r\n\r\n".to_vec(),
    )));
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (free_port(), free_port());
    let sock = dir.path().join("admin.sock");
    let hsock = dir.path().join("haproxy.sock");
    let cfg = Cfg::new()
        .admin_socket(sock.display())
        .timeouts("2s", "10s", "10s")
        .listen(
            Proxy::new("web")
                .port(ours)
                .mode("http")
                .server("w1", format!("127.0.0.1:{origin}")),
        )
        .build();
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let _h = Haproxy::start(
        &format!(
            "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout connect 2s\n  \
             timeout client 10s\n  timeout server 10s\nlisten web\n  bind 127.0.0.1:{theirs}\n  \
             server w1 127.0.0.1:{origin}\n",
            hsock.display()
        ),
        &[theirs],
    );
    let empty = socat(&sock, "show errors");
    assert!(
        empty.starts_with("Total events captured on [") && empty.ends_with("] : 0\n\n"),
        "{empty:?}"
    );
    // A request with a space in its target, a binary byte in a header, and a
    // response with a header line that has no colon.
    for port in [ours, theirs] {
        let bad = b"GET /a b c HTTP/1.1\r\nHost: x\r\nX-Bin: \x01\\\r\n\r\n";
        assert_eq!(haproxy_status(port, bad), 400);
        assert_eq!(
            haproxy_status(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            502
        );
    }
    let mine = socat(&sock, "show errors");
    let haproxys = socat(&hsock, "show errors");
    assert_eq!(comparable(&mine), comparable(&haproxys), "ours:\n{mine}");
    assert!(
        mine.contains("  00000  GET /a b c HTTP/1.1\\r\\n\n"),
        "{mine}"
    );
    assert!(mine.contains("  00017  Bad Header\\r\\n\n"), "{mine}");
    // One direction, one proxy, or a proxy that does not exist.
    let responses = socat(&sock, "show errors web response");
    assert!(responses.contains("invalid response") && !responses.contains("invalid request"));
    assert_eq!(socat(&sock, "show errors nope"), "No such proxy.\n\n");
}

/// Listen section `name` on `port` serving the stats page at `/stats` to
/// user admin:admin, with `admin` (`admin = COND`, `admin-unless = COND`, or
/// nothing: read-only).
fn stats_page(name: &str, port: u16, admin: &str) -> Proxy {
    let keys = r#"uri = "/stats", auth = ["admin:admin"]"#;
    let keys = if admin.is_empty() {
        keys.to_string()
    } else {
        format!("{keys}, {admin}")
    };
    Proxy::new(name).port(port).mode("http").stats(&keys)
}

/// The `Location` of a 303 answer to a POST of `form` to the page at `url`.
fn post(url: &str, auth: Option<&str>, form: &str) -> String {
    let mut args = vec!["-d", form, url];
    if let Some(a) = auth {
        args.splice(0..0, ["-u", a]);
    }
    let (head, _) = support::clients::curl(&args);
    assert!(head.starts_with("HTTP/1.1 303 See Other"), "{head}");
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(": ")?;
            name.eq_ignore_ascii_case("location").then_some(value)
        })
        .unwrap_or_else(|| panic!("no Location in {head}"))
        .to_string()
}

/// A server's `srv_admin_state` in `show servers state` (0 ready, 1 maint, 8 drain).
fn admin_state(sock: &std::path::Path, server: &str) -> String {
    let out = socat(sock, "show servers state app");
    out.lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|c| c.len() > 6 && c[3] == server)
        .unwrap_or_else(|| panic!("no {server} in {out}"))[6]
        .to_string()
}

#[test]
fn the_stats_pages_admin_form_sets_servers_as_haproxys_does() {
    let a = TestServer::start("a", Behaviour::Hello);
    let b = TestServer::start("b", Behaviour::Hello);
    let (port, admin_port, ro_port) = (free_port(), free_port(), free_port());
    let (unless_local, unless_false) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let (sock, cfg) = support::clients::admin_socket(dir.path());
    let cfg = cfg
        .timeouts("2s", "10s", "10s")
        .listen(round_robin_app(port, &[&a, &b]))
        .listen(stats_page("stats", admin_port, r#"admin = "LOCALHOST""#))
        .listen(stats_page("readonly", ro_port, r#"admin = "FALSE""#))
        .listen(stats_page(
            "unless_local",
            unless_local,
            r#"admin-unless = "LOCALHOST""#,
        ))
        .listen(stats_page(
            "unless_false",
            unless_false,
            r#"admin-unless = "FALSE""#,
        ))
        .build();
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let url = format!("http://127.0.0.1:{admin_port}/stats");
    let ro = format!("http://127.0.0.1:{ro_port}/stats");

    // The page an admin sees: a checkbox per server, the action form.
    let (_, page) = support::clients::curl(&["-u", "admin:admin", &url]);
    assert!(page.contains(
        "<td><input class='app-checkbox' type=\"checkbox\" name=\"s\" value=\"a\"></td>"
    ));
    assert!(page.contains("<option value=\"maint\">Set state to MAINT</option>"));
    assert!(page.contains("<input type=\"hidden\" name=\"b\" value=\"#1\">"));
    let (_, page) = support::clients::curl(&["-u", "admin:admin", &ro]);
    assert!(!page.contains("checkbox"), "no admin rights, no form");
    // `stats admin unless COND`: the negation.
    let form = |port: u16| {
        let (_, page) = support::clients::curl(&[
            "-u",
            "admin:admin",
            &format!("http://127.0.0.1:{port}/stats"),
        ]);
        page.contains("checkbox")
    };
    assert!(
        !form(unless_local),
        "unless LOCALHOST: no form from 127.0.0.1"
    );
    assert!(form(unless_false), "unless FALSE: the form");

    // MAINT from the page, as a browser posts the form: no traffic to a.
    assert_eq!(
        post(&url, Some("admin:admin"), "s=a&action=maint&b=%231"),
        "/stats;st=DONE"
    );
    assert_eq!(admin_state(&sock, "a"), "1");
    let before = a.accepted();
    for _ in 0..8 {
        assert_eq!(which_server(port), "b");
    }
    assert_eq!(a.accepted(), before, "a in MAINT takes nothing");
    let (_, page) = support::clients::curl(&["-u", "admin:admin", &format!("{url};st=DONE")]);
    assert!(
        page.contains("[X]</a> Action processed successfully.</div>"),
        "{page}"
    );
    assert!(page.contains("<tr class=\"maintain\" data-sv=\"a\">"));

    // Refused as HAProxy refuses: no admin rights, no credentials, an action
    // with no runtime-API equivalent, a server that does not exist.
    assert_eq!(
        post(&ro, Some("admin:admin"), "s=a&action=ready&b=%231"),
        "/stats;st=DENY"
    );
    let (head, _) = support::clients::curl(&["-d", "s=a&action=ready&b=%231", &url]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert_eq!(
        post(&url, Some("admin:admin"), "s=a&action=hdown&b=app"),
        "/stats;st=ERRP"
    );
    assert_eq!(
        post(&url, Some("admin:admin"), "s=zz&action=ready&b=app"),
        "/stats;st=ERRP"
    );
    assert_eq!(
        post(&url, Some("admin:admin"), "action=ready&b=app"),
        "/stats;st=NONE"
    );
    assert_eq!(admin_state(&sock, "a"), "1", "nothing changed a");

    // DRAIN, then READY again: a takes sessions again.
    assert_eq!(
        post(&url, Some("admin:admin"), "s=a&s=b&action=drain&b=app"),
        "/stats;st=DONE"
    );
    assert_eq!(
        (admin_state(&sock, "a"), admin_state(&sock, "b")),
        ("8".into(), "8".into())
    );
    assert_eq!(
        post(
            &url,
            Some("admin:admin"),
            "s=a&s=b&s=zz&action=ready&b=%231"
        ),
        "/stats;st=PART"
    );
    assert_eq!(admin_state(&sock, "a"), "0");
    let seen: Vec<String> = (0..4).map(|_| which_server(port)).collect();
    assert!(seen.iter().any(|s| s == "a"), "{seen:?}");
}

/// Reads one HTTP response with a `Content-Length` body; its status line.
fn read_response(c: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return head.lines().next().unwrap().to_string();
            }
        }
        let n = c.read(&mut b).unwrap();
        assert!(n > 0, "closed mid-response: {got:?}");
        got.extend_from_slice(&b[..n]);
    }
}

#[test]
fn show_sess_shows_a_keep_alive_http_session_and_shutdown_session_ends_it() {
    let nginx = support::servers::Nginx::start(&[("index.html", "hello")]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (sock, cfg) = support::clients::admin_socket(dir.path());
    let cfg = cfg
        .timeouts("2s", "30s", "30s")
        .listen(
            Proxy::new("web")
                .port(port)
                .mode("http")
                .server("n1", format!("127.0.0.1:{}", nginx.port)),
        )
        .build();
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        c.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut c), "HTTP/1.1 200 OK");
    }
    // Between two requests: routed to its backend, holding no server.
    let answer = socat(&sock, "show sess");
    let lines = sessions(&answer);
    assert_eq!(lines.len(), 1, "{answer}");
    let src = format!(" src={} ", c.local_addr().unwrap());
    assert!(
        lines[0].contains(&format!("proto=tcpv4{src}fe=web be=web srv=<none> ")),
        "{answer}"
    );
    let id = lines[0].split_once(':').unwrap().0;
    assert_eq!(socat(&sock, &format!("shutdown session {id}")), "\n");
    let mut b = [0u8; 16];
    assert_eq!(
        c.read(&mut b).unwrap_or(0),
        0,
        "the client's connection is closed"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        socat(&sock, "show sess") == "\n"
    }));
}

/// The same posts to HAProxy's page and to ringlb's: the same `;st=` answers
/// (health forcing aside: ringlb refuses what its runtime API cannot do).
#[test]
fn admin_posts_are_answered_as_haproxy_answers_them() {
    let a = TestServer::start("a", Behaviour::Hello);
    let b = TestServer::start("b", Behaviour::Hello);
    let (port, page, ro) = (free_port(), free_port(), free_port());
    let (hport, hpage, hro) = (free_port(), free_port(), free_port());
    let cfg = Cfg::new()
        .timeouts("2s", "10s", "10s")
        .listen(
            Proxy::new("app")
                .port(port)
                .server("a", a.addr)
                .server("b", b.addr),
        )
        .listen(stats_page("stats", page, r#"admin = "LOCALHOST""#))
        .listen(stats_page("readonly", ro, ""))
        .build();
    let _lb = Ringlb::start(&cfg, &[]);
    let _h = support::servers::Haproxy::start(
        &format!(
            "defaults\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             listen app\n  bind 127.0.0.1:{hport}\n  server a {}\n  server b {}\n\
             listen stats\n  mode http\n  bind 127.0.0.1:{hpage}\n  stats enable\n  stats uri /stats\n  \
             stats auth admin:admin\n  stats admin if LOCALHOST\n\
             listen readonly\n  mode http\n  bind 127.0.0.1:{hro}\n  stats enable\n  stats uri /stats\n  \
             stats auth admin:admin\n",
            a.addr, b.addr
        ),
        &[hport, hpage, hro],
    );
    let forms = [
        "s=a&action=maint&b=app",
        "s=a&action=maint&b=app",
        "s=a&s=b&action=drain&b=app",
        "s=a&s=zz&action=ready&b=app",
        "s=zz&action=ready&b=app",
        "action=ready&b=app",
        "s=a&action=bogus&b=app",
        "s=a&action=ready&b=nope",
        "s=a&action=dhlth&b=app",
        "s=a&action=eagent&b=app",
        "s=b&action=shutdown&b=app",
        "s=b&action=disable&b=app",
        "s=b&action=enable&b=app",
        "s=b&action=stop&b=app",
        "s=b&action=start&b=app",
    ];
    for f in forms {
        let ours = post(
            &format!("http://127.0.0.1:{page}/stats"),
            Some("admin:admin"),
            f,
        );
        let theirs = post(
            &format!("http://127.0.0.1:{hpage}/stats"),
            Some("admin:admin"),
            f,
        );
        assert_eq!(ours, theirs, "{f}");
    }
    for (ours, theirs) in [(ro, hro), (page, hpage)] {
        let url = |p: u16| format!("http://127.0.0.1:{p}/stats;norefresh");
        let f = "s=a&action=maint&b=app";
        assert_eq!(
            post(&url(ours), Some("admin:admin"), f),
            post(&url(theirs), Some("admin:admin"), f),
            "{f} on ;norefresh"
        );
    }
    // Where the posts left the servers: a in MAINT (the last post); b READY
    // — drained, disabled, enabled (back to DRAIN: HAProxy's MAINT and DRAIN
    // are two flags, which is why `stop` then changed nothing), started.
    let seen: Vec<String> = (0..4).map(|_| which_server(port)).collect();
    assert!(seen.iter().all(|s| s == "b"), "{seen:?}");
}
