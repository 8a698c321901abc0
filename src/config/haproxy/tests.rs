//! haproxy.cfg parser tests: sections, keyword mapping, errors with line:col.

use std::path::PathBuf;

use crate::config::model::*;
use crate::config::{parse_haproxy, ConfigError, Loaded};

fn env(name: &str) -> Option<String> {
    match name {
        "FE_PORT" => Some("9100".into()),
        "PROD" => Some("1".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Loaded, ConfigError> {
    parse_haproxy(&[(PathBuf::from("t.cfg"), text.to_string())], false, &env)
}

fn ok(text: &str) -> Config {
    load(text).unwrap_or_else(|e| panic!("{e}")).config
}

fn err(text: &str) -> String {
    match load(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const L4: &str = "global #全局属性
    maxconn 1000   #ulimit -n至少为60018
    log 127.0.0.1 local0 info
    log 127.0.0.1 local1 warning

defaults
    mode tcp
    log global
    option tcplog            #开启tcplog
    timeout connect 5000ms
    timeout client 10000ms
    timeout server 10000ms   #TCP模式下
    option httpchk GET /healthCheck.html    #定义默认的健康检查策略

frontend http-in
    bind *:9002
    maxconn 1000                    #定义此端口上的maxconn
    default_backend default_servers  #请求定向至后端服务群default_servers

backend default_servers    #定义后端服务群default_servers
    balance roundrobin
    server def.srv1 127.0.0.1:8082 maxconn 300 check
    server def.srv2 127.0.0.1:8083 maxconn 300 check
";

#[test]
fn tutorial_l4_maps_onto_the_model() {
    let c = ok(L4);
    assert_eq!(c.global.maxconn, 1000);
    assert_eq!(c.global.log.len(), 2);
    assert_eq!(c.global.log[1].facility, 17);
    let fe = &c.frontends[0];
    assert_eq!(fe.name, "http-in");
    assert_eq!(fe.binds[0].addr.port(), 9002);
    assert_eq!(fe.log.len(), 2);
    assert_eq!(fe.timeouts.client, Some(std::time::Duration::from_secs(10)));
    let be = &c.backends[0];
    assert_eq!(be.servers.len(), 2);
    assert_eq!(be.servers[1].maxconn, 300);
    assert!(be.servers[0].check);
    assert!(
        matches!(&be.check, CheckSpec::Http { method, uri, .. } if method == "GET" && uri == "/healthCheck.html")
    );
}

/// The line and column of an error message `t.cfg:L:C: ...`.
fn pos(e: &str) -> (usize, usize) {
    let mut it = e.split(':').skip(1);
    let l = it.next().unwrap().parse().unwrap_or_else(|_| panic!("{e}"));
    let c = it.next().unwrap().parse().unwrap_or_else(|_| panic!("{e}"));
    (l, c)
}

const TAIL: &str = "
backend be
    server a 127.0.0.1:8000
";

fn with_fe(fe: &str) -> String {
    format!("frontend fe\n    bind 127.0.0.1:9000\n    default_backend be\n{fe}{TAIL}")
}

#[test]
fn quotes_escapes_and_env_vars_reach_the_model() {
    let c = ok(&format!(
        "frontend fe\n    bind \"127.0.0.1:${{FE_PORT}}\"\n    default_backend be\n{TAIL}\
         listen stats\n    bind 127.0.0.1:1080\n    stats realm HAProxy\\ Stats\n    stats auth 'admin:pa ss'\n    stats uri \"/st#ats\" # a comment\n"
    ));
    assert_eq!(c.frontends[0].binds[0].addr.port(), 9100);
    let st = c.frontends[1].stats.as_ref().unwrap();
    assert_eq!(st.realm.as_deref(), Some("HAProxy Stats"));
    assert_eq!(st.auth, ["admin:pa ss"]);
    assert_eq!(st.uri, "/st#ats");
}

#[test]
fn if_blocks_select_lines() {
    let text = "
.if defined(PROD)
global
    maxconn 500
.elif defined(NOPE)
global
    maxconn 600
.else
global
    maxconn 700
.endif
.if !defined(PROD)
    this would be an error
.endif
"
    .to_string()
        + &with_fe("");
    assert_eq!(ok(&text).global.maxconn, 500);
    let e = err(&format!(".if defined(PROD)\nglobal\n{}", with_fe("")));
    assert!(e.contains(".if without .endif"), "{e}");
    assert_eq!(pos(&e), (1, 1));
    let e = err(".endif\n");
    assert!(e.contains(".endif without .if"), "{e}");
    let e = err(".if bogus(x)\n.endif\n");
    assert!(e.contains("unknown function"), "{e}");
}

#[test]
fn sections_continue_across_blank_lines_and_comments_and_reopen_global() {
    let c = ok(
        &("global\n    maxconn 100\n\n# 注释\n\n    nbthread 2\n".to_string()
            + &with_fe("\n    # comment\n\n    maxconn 50\n")
            + "global\n    pidfile /tmp/x.pid\n"),
    );
    assert_eq!(c.global.maxconn, 100);
    assert_eq!(c.global.shards, Some(2));
    assert_eq!(
        c.global.pidfile.as_deref(),
        Some(std::path::Path::new("/tmp/x.pid"))
    );
    assert_eq!(c.frontends[0].maxconn, 50);
}

#[test]
fn no_log_drops_the_targets_defaults_gave() {
    let c = ok("
global
    log 127.0.0.1:514 local0
defaults
    mode http
    log global
frontend loud
    bind 127.0.0.1:1
frontend quiet
    bind 127.0.0.1:2
    no log
");
    assert_eq!(c.frontends[0].log.len(), 1);
    assert!(c.frontends[1].log.is_empty());
}

#[test]
fn defaults_are_inherited_and_reset_by_the_next_defaults() {
    let c = ok("
defaults
    mode tcp
    timeout connect 3s
    retries 5
backend a
    server s 127.0.0.1:1
defaults
    timeout client 7s
backend b
    server s 127.0.0.1:1
defaults named
    retries 9
defaults
backend c from named
    server s 127.0.0.1:1
");
    assert_eq!(c.backends[0].retries, 5);
    assert_eq!(
        c.backends[0].timeouts.connect,
        Some(std::time::Duration::from_secs(3))
    );
    assert_eq!(c.backends[1].retries, 3);
    assert_eq!(c.backends[1].timeouts.connect, None);
    assert_eq!(c.backends[2].retries, 9);
    let e = err("backend c from nowhere\n    server s 127.0.0.1:1\n");
    assert!(e.contains("no defaults section named \"nowhere\""), "{e}");
}

#[test]
fn servers_checks_and_options_map() {
    let c = ok("
backend redis
    option tcp-check
    tcp-check connect
    tcp-check send PING\\r\\n
    tcp-check expect string +PONG
    tcp-check send info\\ replication\\r\\n
    tcp-check expect string role:master
    tcp-check send QUIT\\r\\n
    tcp-check expect string +OK
    default-server inter 1s fall 2 rise 1
    server r1 127.0.0.1:6379 check weight 10 backup
    server r2 127.0.0.1:6380 check port 6390 maxqueue 5 slowstart 10s disabled on-marked-down shutdown-sessions on-marked-up shutdown-backup-sessions
backend pg
    option httpchk OPTIONS /master
    http-check expect status 200
    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
    server p1 127.0.0.1:5432 maxconn 100 check port 8008
backend my
    option mysql-check user haproxy
    balance leastconn
    server m1 127.0.0.1:3306 check
backend cache
    balance url_param userid
    hash-type consistent
    server c1 127.0.0.1:1
");
    let r = &c.backends[0];
    match &r.check {
        CheckSpec::TcpCheck { steps } => {
            assert_eq!(steps.len(), 7);
            assert_eq!(steps[1], TcpCheckStep::Send(b"PING\r\n".to_vec()));
            assert_eq!(
                steps[3],
                TcpCheckStep::Send(b"info replication\r\n".to_vec())
            );
            assert_eq!(steps[4], TcpCheckStep::ExpectString("role:master".into()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.servers[0].inter, std::time::Duration::from_secs(1));
    assert_eq!(r.servers[0].weight, 10);
    assert!(r.servers[0].backup);
    assert_eq!(r.servers[1].check_port, Some(6390));
    assert!(r.servers[1].disabled);
    // Server options, as in HAProxy: r2's own, not r1's.
    assert_eq!(r.servers[0].on_marked_down, OnMarkedDown::Nothing);
    assert!(!r.servers[0].shutdown_backup_sessions);
    assert_eq!(r.servers[1].on_marked_down, OnMarkedDown::ShutdownSessions);
    assert!(r.servers[1].shutdown_backup_sessions);
    let pg = &c.backends[1];
    assert!(
        matches!(&pg.check, CheckSpec::Http { expect: HttpExpect::Status(200), uri, .. } if uri == "/master")
    );
    assert_eq!(pg.servers[0].on_marked_down, OnMarkedDown::ShutdownSessions);
    assert_eq!(pg.servers[0].check_port, Some(8008));
    assert!(matches!(&c.backends[2].check, CheckSpec::Mysql { user: Some(u) } if u == "haproxy"));
    assert_eq!(c.backends[2].balance, Balance::LeastConn);
    assert_eq!(c.backends[3].balance, Balance::UrlParam);
    assert_eq!(c.backends[3].balance_arg.as_deref(), Some("userid"));
    assert_eq!(c.backends[3].hash_type, HashType::Consistent);
}

#[test]
fn routing_rules_and_acls_are_kept_as_strings() {
    let c = ok("
defaults
    mode http
frontend fe
    bind :80
    acl is_api path_beg -i /api/
    acl is_api path_beg -i /v2/
    acl blocked src 10.0.0.0/8
    http-request deny if blocked
    http-request set-header X-Env \"prod env\"
    use_backend api if is_api !blocked
    use_backend api unless { path_end .jpg }
    default_backend web
backend api
    server a 127.0.0.1:1
backend web
    cookie SRV insert indirect nocache
    server w 127.0.0.1:2 cookie w1
");
    let fe = &c.frontends[0];
    assert_eq!(
        fe.acl.iter().find(|a| a.0 == "is_api").unwrap().1,
        "path_beg -i /api/ /v2/"
    );
    assert_eq!(
        fe.http_request,
        ["deny if blocked", "set-header X-Env \"prod env\""]
    );
    assert_eq!(fe.use_backend[0].condition, "is_api !blocked");
    assert!(fe.use_backend[1].negate);
    assert_eq!(fe.use_backend[1].condition, "{ path_end .jpg }");
    let ck = c.backends[1].cookie.as_ref().unwrap();
    assert!(ck.indirect && ck.nocache && ck.mode == "insert");
    assert_eq!(c.backends[1].servers[0].cookie.as_deref(), Some("w1"));
}

#[test]
fn bad_input_names_line_and_column() {
    // Unterminated quote: at the quote.
    let e = err("global\n    pidfile \"/tmp/x.pid\n");
    assert!(e.contains("unterminated quote"), "{e}");
    assert_eq!(pos(&e), (2, 13));
    // Unknown section keyword outside any section.
    let e = err("# c\nbakend be\n");
    assert!(e.contains("unknown keyword \"bakend\""), "{e}");
    assert!(e.contains("did you mean \"backend\""), "{e}");
    assert_eq!(pos(&e), (2, 1));
    // Keyword in the wrong section.
    let e = err(&with_fe("    server x 127.0.0.1:1\n"));
    assert!(
        e.contains("keyword \"server\" is not allowed in a frontend section"),
        "{e}"
    );
    assert_eq!(pos(&e), (4, 5));
    let e = err(&with_fe("    option httpchk GET /\n"));
    assert!(
        e.contains("keyword \"option httpchk\" is not allowed in a frontend section"),
        "{e}"
    );
    assert_eq!(pos(&e), (4, 5));
    let e = err("global\n    maxconn 10\n    balance roundrobin\n");
    assert!(e.contains("not allowed in section \"global\""), "{e}");
    assert_eq!(pos(&e), (3, 5));
    let e = err(&with_fe("    daemon\n"));
    assert!(e.contains("only valid in section \"global\""), "{e}");
    // Server without address.
    let e = err("backend be\n    server a\n");
    assert!(e.contains("server needs a name and an address"), "{e}");
    assert_eq!(pos(&e), (2, 5));
    // Duplicate proxy names: at the second name.
    let e = err(&(with_fe("") + "backend be\n    server b 127.0.0.1:2\n"));
    assert!(e.contains("duplicate name \"be\""), "{e}");
    assert_eq!(pos(&e), (7, 9));
    // use_backend to nowhere: at the backend name.
    let e = err(&with_fe("    use_backend nowhere if TRUE\n"));
    assert!(e.contains("use-backend \"nowhere\" does not exist"), "{e}");
    assert_eq!(pos(&e), (4, 17));
    // Bad value caught by the shared resolver, at the .cfg word.
    let e = err("backend be\n    server a 127.0.0.1:99999 check\n");
    assert!(e.contains("invalid address \"127.0.0.1:99999\""), "{e}");
    assert_eq!(pos(&e), (2, 14));
    let e = err("backend be\n    timeout server 5parsecs\n    server a 127.0.0.1:1\n");
    assert_eq!(pos(&e), (2, 20));
    // Unsupported keyword and option.
    let e = err("backend be\n    stick-table type ip size 1m\n    server a 127.0.0.1:1\n");
    assert!(
        e.contains("unsupported keyword \"stick-table\" in section \"backend be\""),
        "{e}"
    );
    assert_eq!(pos(&e), (2, 5));
    assert!(!e.contains("did you mean"), "{e}");
    let e = err("backend be\n    severs a 127.0.0.1:1\n");
    assert!(e.contains("(did you mean \"server\"?)"), "{e}");
    let e = err("backend be\n    server a 127.0.0.1:1 agent-check\n");
    assert!(e.contains("unsupported option \"agent-check\""), "{e}");
    assert_eq!(pos(&e), (2, 26));
    let e = err("resolvers dns\n    nameserver a 127.0.0.1:53\n");
    assert!(e.contains("unsupported section \"resolvers\""), "{e}");
    // A userlist is read; a password that is not a crypt(3) SHA hash is refused
    // where it stands.
    let e = err("userlist admins\n    user a password x\n");
    assert!(e.contains("only crypt(3) SHA-512"), "{e}");
    assert_eq!(pos(&e), (2, 21));
    // Chinese text before the error counts as characters in the column.
    let e = err("backend 服务\n    server 甲 127.0.0.1:0\n");
    assert_eq!(pos(&e), (2, 14));
}

#[test]
fn lenient_turns_unsupported_keywords_into_warnings() {
    let text = "backend be\n    stick-table type ip size 1m\n    stats bogus\n    http-check bogus\n    server a 127.0.0.1:1 agent-check\nresolvers dns\n    nameserver x 1.1.1.1:53\n";
    let l = parse_haproxy(&[(PathBuf::from("t.cfg"), text.into())], true, &env).unwrap();
    assert_eq!(l.config.backends[0].servers.len(), 1);
    assert_eq!(l.notices.len(), 5, "{:?}", l.notices);
    assert!(l.notices[0].starts_with("t.cfg:2:5: warning: unsupported keyword"));
}

#[test]
fn notices_for_no_ops() {
    let l = load(&("global\n    nbproc 1\n    cpu-map 1 0\n    tune.ssl.default-dh-param 2048\n    chroot /var/empty\n".to_string() + &with_fe("    option http-use-htx\n"))).unwrap();
    // chroot is applied now (after binding), so it is no longer a notice.
    assert_eq!(l.notices.len(), 4, "{:?}", l.notices);
    assert!(l.notices.iter().all(|n| n.contains("notice")));
    assert_eq!(
        l.config.global.chroot.as_deref(),
        Some(std::path::Path::new("/var/empty"))
    );
}

#[test]
fn several_files_keep_their_own_positions() {
    let a = (
        PathBuf::from("a.cfg"),
        "global\n    maxconn 100\n".to_string(),
    );
    let b = (
        PathBuf::from("b.cfg"),
        with_fe("    use_backend nope if TRUE\n"),
    );
    let e = parse_haproxy(&[a.clone(), b], false, &env)
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("b.cfg:4:17:"), "{e}");
    // A section does not continue into the next file.
    let c = (PathBuf::from("c.cfg"), "    maxconn 5\n".to_string());
    let e = parse_haproxy(&[a, c], false, &env)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("c.cfg:1:5:") && e.contains("out of any section"),
        "{e}"
    );
}

/// Whether every address in `raw` is a literal (so resolving it does no DNS).
fn addresses_are_literal(raw: &crate::config::schema::RawConfig) -> bool {
    use crate::config::schema::RawBind;
    let lit = |a: &str| {
        let host = a.rsplit_once(':').map(|x| x.0).unwrap_or(a);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.is_empty() || host == "*" || host.parse::<std::net::IpAddr>().is_ok()
    };
    let logs_ok = raw.global.as_ref().is_none_or(|g| {
        g.get_ref().log.iter().flatten().all(|t| {
            let t = &t.get_ref().target;
            !t.starts_with("udp://") || lit(&t[6..])
        })
    });
    let proxies = raw.frontend.iter().chain(&raw.backend).chain(&raw.listen);
    logs_ok
        && proxies.into_iter().all(|p| {
            let p = p.get_ref();
            let proxy_logs = match p.log.as_ref().map(|l| l.get_ref()) {
                Some(crate::config::schema::RawProxyLog::Targets(v)) => v
                    .iter()
                    .all(|t| !t.target.starts_with("udp://") || lit(&t.target[6..])),
                _ => true,
            };
            proxy_logs
                && p.bind.iter().flatten().all(|b| match b.get_ref() {
                    RawBind::Address(a) => lit(a),
                    RawBind::Table(t) => lit(&t.address),
                })
                && p.servers.iter().flatten().all(|s| {
                    s.get_ref()
                        .address
                        .as_ref()
                        .is_none_or(|a| lit(a.get_ref()))
                })
        })
}

/// A bounded mutation fuzz of the lexer, the section parser and the resolver
/// over the tutorial and test configs: no input panics, and every refusal names
/// a line (>= 1) within the input. Seeded, so a failure reproduces.
#[test]
fn fuzz_mutated_configs_never_panic_and_errors_name_a_line() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut corpus = Vec::new();
    for dir in ["config/haproxy", "tests/haproxy_cfg"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "cfg") {
                corpus.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    assert!(corpus.len() >= 10);
    const PIECES: &[&str] = &[
        "\"",
        "'",
        "\\",
        "#",
        "$",
        "${",
        "}",
        "\n",
        " ",
        "\t",
        ".if ",
        ".endif",
        ".else",
        "\n.if defined(X)\n",
        "\ndefaults\n",
        "\nbackend b\n",
        "server",
        "名",
        "é",
        "\\x",
        "\r",
        ":",
        "0",
        "999999999999999999999",
        "-1",
        "from",
        "check",
        "option",
        "no ",
    ];
    // RINGLB_FUZZ_SEED / RINGLB_FUZZ_CASES run a longer or different campaign.
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let mut seed: u64 = var("RINGLB_FUZZ_SEED").unwrap_or(0x9e37_79b9_7f4a_7c15) | 1;
    let cases = var("RINGLB_FUZZ_CASES").unwrap_or(8000) as usize;
    let mut rnd = |n: usize| -> usize {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    let start = std::time::Instant::now();
    // A hang fails the run (with the case number) instead of stalling it.
    let current = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (finished, watchdog) = std::sync::mpsc::channel::<()>();
    {
        let current = current.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                watchdog.recv_timeout(std::time::Duration::from_secs(60 + cases as u64 / 100))
            {
                eprintln!(
                    "fuzz: case {} did not finish within 60 s (hang)",
                    current.load(std::sync::atomic::Ordering::SeqCst)
                );
                std::process::abort();
            }
        });
    }
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..cases {
        let mut text: Vec<char> = corpus[rnd(corpus.len())].chars().collect();
        for _ in 0..1 + rnd(4) {
            let at = rnd(text.len() + 1);
            match rnd(5) {
                0 => {
                    let p = PIECES[rnd(PIECES.len())];
                    for (i, c) in p.chars().enumerate() {
                        text.insert(at + i, c);
                    }
                }
                1 if at < text.len() => {
                    let end = (at + 1 + rnd(20)).min(text.len());
                    text.drain(at..end);
                }
                2 if at < text.len() => text[at] = char::from(32 + rnd(95) as u8),
                3 => text.truncate(at),
                _ => {
                    // Duplicate a slice elsewhere.
                    let from = rnd(text.len() + 1);
                    let end = (from + rnd(60)).min(text.len());
                    let piece: Vec<char> = text[from..end].to_vec();
                    for (i, c) in piece.into_iter().enumerate() {
                        text.insert(at.min(text.len()) + i, c);
                    }
                }
            }
        }
        let text: String = text.into_iter().collect();
        current.store(case, std::sync::atomic::Ordering::SeqCst);
        let src = [(PathBuf::from("f.cfg"), text.clone())];
        let lines = text.lines().count().max(1) + 1;
        // The parser alone, always.
        let (all, parts) = crate::config::concat(&src);
        let parsed = super::parse(
            &all,
            &[parts[0].0],
            &super::Options {
                lenient: rnd(2) == 0,
                env: &env,
            },
        );
        let resolvable = matches!(&parsed, Ok(p) if addresses_are_literal(&p.raw));
        if parsed.is_err() || resolvable {
            match parse_haproxy(&src, false, &env) {
                Ok(l) => {
                    accepted += 1;
                    // Whatever loads also imports to TOML that loads the same.
                    let (toml, _) = crate::config::import::haproxy_to_toml(&src, false, &env)
                        .unwrap_or_else(|e| panic!("case {case}: import failed: {e}\n{text}"));
                    let mut back = crate::config::parse_str(&toml, std::path::Path::new("f.cfg"))
                        .unwrap_or_else(|e| panic!("case {case}: {e}\n{text}\n---\n{toml}"));
                    back.source = l.config.source.clone();
                    assert_eq!(back, l.config, "case {case}:\n{text}\n---\n{toml}");
                }
                Err(e) => {
                    refused += 1;
                    assert!(
                        e.line >= 1 && e.line <= lines,
                        "case {case}: error without a line in the input: {e}\n{text}"
                    );
                }
            }
        }
    }
    let _ = finished.send(());
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
    assert!(
        cases > 8000 || start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn master_worker_and_expose_fd_listeners() {
    let c = ok("global\n    master-worker\n    stats socket /run/r.sock mode 600 level admin expose-fd listeners\n");
    assert!(c.global.master_worker && c.global.expose_fd_listeners);
    assert_eq!(c.global.admin_socket, Some(PathBuf::from("/run/r.sock")));
    let c = ok("global\n    stats socket /run/r.sock\n");
    assert!(!c.global.master_worker && !c.global.expose_fd_listeners);
    let e = err("global\n    master-worker no-exit-on-failure\n");
    assert!(
        e.contains("t.cfg:2:19:") && e.contains("no-exit-on-failure"),
        "{e}"
    );
}

#[test]
fn http_errors_sections_are_imported_by_errorfiles() {
    let dir = tempfile::tempdir().unwrap();
    let page = |name: &str, status: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("HTTP/1.0 {status}\r\n\r\n{name}")).unwrap();
        p.display().to_string()
    };
    let (a503, a403, own503) = (
        page("a503", "503 X"),
        page("a403", "403 X"),
        page("own503", "503 Y"),
    );
    let text = format!(
        "defaults\n    mode http\n    errorfiles site 403\n\
         frontend fe\n    bind :80\n    errorfile 503 {own503}\n    errorfiles site\n    default_backend b\n\
         backend b\n    errorfiles site 503\n    server s 127.0.0.1:1\n\
         http-errors site\n    errorfile 503 {a503}\n    errorfile 403 {a403}\n"
    );
    let c = ok(&text);
    let body = |f: &crate::config::errorfile::ErrorFiles, s: u16| {
        f.get(s).map(|r| {
            String::from_utf8_lossy(r)
                .rsplit('\n')
                .next()
                .unwrap_or("")
                .to_string()
        })
    };
    // The frontend's own errorfile wins over the imported one.
    assert_eq!(
        body(&c.frontends[0].errorfiles, 503).as_deref(),
        Some("own503")
    );
    assert_eq!(
        body(&c.frontends[0].errorfiles, 403).as_deref(),
        Some("a403")
    );
    // The backend imports 503 only, and the defaults' 403.
    assert_eq!(
        body(&c.backends[0].errorfiles, 503).as_deref(),
        Some("a503")
    );
    assert_eq!(
        body(&c.backends[0].errorfiles, 403).as_deref(),
        Some("a403")
    );
    let e = err("frontend fe\n    bind :80\n    errorfiles nosuch\n");
    assert!(e.contains("no http-errors section named \"nosuch\""), "{e}");
    let e = err(&format!(
        "frontend fe\n    bind :80\n    errorfiles site 404\nhttp-errors site\n    errorfile 503 {a503}\n"
    ));
    assert!(
        e.contains("http-errors \"site\" has no errorfile 404"),
        "{e}"
    );
}
