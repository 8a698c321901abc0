//! Parsing and refusal tests: the examples users copy parse, inheritance works key
//! by key, and each refusal names the right line, column and message.

use std::path::Path;
use std::time::Duration;

use super::model::*;
use super::parse_str;

fn err(text: &str) -> String {
    parse_str(text, Path::new("t.toml"))
        .unwrap_err()
        .to_string()
}

const BASE: &str = r#"
[[frontend]]
name = "fe"
bind = ["127.0.0.1:9000"]
default-backend = "be"

[[backend]]
name = "be"
servers = [{ name = "a", address = "127.0.0.1:8000" }]
"#;

#[test]
fn every_shipped_example_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            super::load(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 4);
}

#[test]
fn the_demo_config_parses() {
    let text = crate::demo::DEMO_TOML
        .replace("{PORT}", "8000")
        .replace("{S1}", "127.0.0.1:1")
        .replace("{S2}", "127.0.0.1:2");
    parse_str(&text, Path::new("demo")).unwrap();
}

#[test]
fn haproxy_defaults_apply() {
    let c = parse_str(BASE, Path::new("t.toml")).unwrap();
    assert_eq!(c.global.maxconn, 4096);
    let s = &c.backends[0].servers[0];
    assert_eq!(
        (s.weight, s.rise, s.fall, s.inter),
        (1, 2, 3, Duration::from_secs(2))
    );
    assert_eq!(c.backends[0].retries, 3);
    assert_eq!(c.backends[0].balance, Balance::RoundRobin);
    assert_eq!(c.frontends[0].mode, Mode::Tcp);
    assert_eq!(c.frontends[0].binds[0].backlog, 4096);
}

#[test]
fn defaults_and_default_server_are_inherited_key_by_key() {
    let c = parse_str(
        r#"
[defaults]
mode = "tcp"
retries = 1
timeout = { connect = "5s", client = "10s", server = "20s" }
default-server = { maxconn = 50, inter = "1s" }

[[listen]]
name = "l"
bind = ["127.0.0.1:9000"]
timeout = { server = "1m" }
default-server = { weight = 7 }
servers = [
  { name = "a", address = "127.0.0.1:8000" },
  { name = "b", address = "127.0.0.1:8001", maxconn = 3, weight = 2 },
]
"#,
        Path::new("t.toml"),
    )
    .unwrap();
    let b = &c.backends[0];
    assert_eq!(b.retries, 1);
    assert_eq!(b.timeouts.connect, Some(Duration::from_secs(5)));
    assert_eq!(b.timeouts.server, Some(Duration::from_secs(60)));
    assert_eq!(
        (
            b.servers[0].maxconn,
            b.servers[0].weight,
            b.servers[0].inter
        ),
        (50, 7, Duration::from_secs(1))
    );
    assert_eq!((b.servers[1].maxconn, b.servers[1].weight), (3, 2));
    assert_eq!(
        c.frontends[0].default_backend,
        Some(0),
        "a listen uses its own servers"
    );
    assert_eq!(
        c.frontends[0].timeouts.client,
        Some(Duration::from_secs(10))
    );
}

#[test]
fn tcp_check_steps_decode_escapes() {
    let c = parse_str(
        &BASE.replace(
            "name = \"be\"",
            "name = \"be\"\ncheck = { type = \"tcp-check\", steps = [{ send = \"info replication\\\\r\\\\n\" }, { expect = \"string role:master\" }] }",
        ),
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        c.backends[0].check,
        CheckSpec::TcpCheck {
            steps: vec![
                TcpCheckStep::Send(b"info replication\r\n".to_vec()),
                TcpCheckStep::ExpectString("role:master".into())
            ]
        }
    );
}

#[test]
fn unknown_key_is_refused_with_its_position() {
    let e = err(&BASE.replace(
        "default-backend = \"be\"",
        "default-backend = \"be\"\nmaxconns = 5",
    ));
    assert!(e.starts_with("t.toml:6:1: unknown field `maxconns`"), "{e}");
}

#[test]
fn missing_backend_is_refused() {
    let e = err(&BASE.replace("default-backend = \"be\"", "default-backend = \"nope\""));
    assert_eq!(
        e,
        "t.toml:5:19: frontend \"fe\": default-backend \"nope\" does not exist"
    );
}

#[test]
fn duplicate_names_are_refused() {
    let e = err(&format!("{BASE}\n[[backend]]\nname = \"be\"\n"));
    assert_eq!(
        e,
        "t.toml:12:8: backend: duplicate name \"be\" (first defined at line 8)"
    );
    let e = err(&BASE.replace(
        "servers = [{ name = \"a\", address = \"127.0.0.1:8000\" }]",
        "servers = [{ name = \"a\", address = \"127.0.0.1:8000\" }, { name = \"a\", address = \"127.0.0.1:8001\" }]",
    ));
    assert_eq!(
        e,
        "t.toml:9:65: backend \"be\": duplicate server name \"a\""
    );
}

#[test]
fn bad_address_is_refused() {
    let e = err(&BASE.replace("127.0.0.1:8000", "10.0.0.1:99999"));
    assert_eq!(
        e,
        "t.toml:9:36: backend \"be\": server \"a\": invalid address \"10.0.0.1:99999\""
    );
}

#[test]
fn weight_300_is_refused() {
    let e = err(&BASE.replace(
        "address = \"127.0.0.1:8000\"",
        "address = \"127.0.0.1:8000\", weight = 300",
    ));
    assert_eq!(
        e,
        "t.toml:9:63: backend \"be\": server \"a\": weight 300 out of range 0-256"
    );
}

#[test]
fn bad_values_are_refused_with_the_key() {
    let e = err(&BASE.replace("name = \"be\"", "name = \"be\"\nbalance = \"fastest\""));
    assert!(
        e.starts_with("t.toml:9:11: backend \"be\": unknown balance \"fastest\""),
        "{e}"
    );
    let e = err(&BASE.replace(
        "name = \"be\"",
        "name = \"be\"\ntimeout = { connect = \"5 parsecs\" }",
    ));
    assert!(
        e.starts_with("t.toml:9:23: backend \"be\": timeout connect: invalid duration"),
        "{e}"
    );
    let e = err(&BASE.replace(
        "address = \"127.0.0.1:8000\"",
        "address = \"127.0.0.1:8000\", fall = 0",
    ));
    assert!(e.contains("fall 0 out of range 1-1000"), "{e}");
    let e = err(&BASE.replace("bind = [\"127.0.0.1:9000\"]\n", ""));
    assert!(e.contains("frontend \"fe\": no bind address"), "{e}");
}

#[test]
fn keys_in_the_wrong_section_are_refused() {
    let e = err(&BASE.replace("name = \"be\"", "name = \"be\"\nbind = [\"*:1\"]"));
    assert!(
        e.contains("backend \"be\": key `bind` is not allowed in a backend section"),
        "{e}"
    );
    let e = err(&BASE.replace(
        "default-backend = \"be\"",
        "default-backend = \"be\"\nbalance = \"first\"",
    ));
    assert!(
        e.contains("key `balance` is not allowed in a frontend section"),
        "{e}"
    );
}

#[test]
fn mode_mismatch_between_frontend_and_backend_is_refused() {
    let e = err(&BASE.replace("name = \"be\"", "name = \"be\"\nmode = \"http\""));
    assert_eq!(
        e,
        "t.toml:5:19: frontend \"fe\": mode tcp does not match backend \"be\" in mode http"
    );
}

#[test]
fn syntax_errors_have_a_position() {
    let e = err("[global\nmaxconn = 1\n");
    assert!(e.starts_with("t.toml:1:"), "{e}");
}

#[test]
fn stats_counters_are_on_unless_turned_off() {
    let on = parse_str(BASE, Path::new("t.toml")).unwrap();
    assert!(on.global.tune.stats_counters);
    let off = parse_str(
        &format!("[global]\ntune = {{ stats-counters = false }}\n{BASE}"),
        Path::new("t.toml"),
    )
    .unwrap();
    assert!(!off.global.tune.stats_counters);
}

#[test]
fn a_stats_admin_condition_that_does_not_compile_is_refused() {
    let page = "[[listen]]\nname = \"st\"\nbind = [\"127.0.0.1:9001\"]\nmode = \"http\"\n";
    let ok = format!("{BASE}{page}acl = {{ lh = \"src 127.0.0.1\" }}\nstats = {{ uri = \"/s\", admin = \"lh || TRUE\" }}\n");
    parse_str(&ok, Path::new("t.toml")).unwrap();
    let bad = format!("{BASE}{page}stats = {{ uri = \"/s\", admin = \"nosuchacl\" }}\n");
    let e = err(&bad);
    assert!(e.contains("stats admin if nosuchacl"), "{e}");
}

/// The TLS keys of issue 14 in TOML: client certificates, `crl-file` and
/// `crt-list` on a bind, `check-ssl`, `crt` and `crl-file` on a server; the
/// same as haproxy.cfg's words.
#[test]
fn tls_keys_in_toml() {
    let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/src/tls/testdata/unit.pem");
    let crl = concat!(env!("CARGO_MANIFEST_DIR"), "/src/tls/testdata/unit-crl.pem");
    let dir = std::env::temp_dir().join(format!("ringlb-tls-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("certs.list");
    std::fs::write(&list, format!("{pem} unit.test\n")).unwrap();
    let text = format!(
        r#"
[[frontend]]
name = "f"
mode = "http"
bind = [{{ address = "127.0.0.1:1", ssl = {{ crt-list = "{}", verify = "optional", ca-file = "{pem}", crl-file = "{crl}", crt-ignore-err = "all" }} }}]
default-backend = "b"

[[backend]]
name = "b"
mode = "http"
servers = [
  {{ name = "s", address = "127.0.0.1:2", ssl = true, verify = "none", crt = "{pem}", check = true }},
  {{ name = "t", address = "127.0.0.1:3", check = true, check-ssl = true, verify = "none" }},
  {{ name = "u", address = "127.0.0.1:4", ssl = true, verify = "none", check = true, port = 5 }},
  {{ name = "v", address = "127.0.0.1:6", ssl = true, ca-file = "{pem}", crl-file = "{crl}" }},
]
"#,
        list.display()
    );
    let c = parse_str(&text, Path::new("t.toml")).unwrap();
    let tls = c.frontends[0].binds[0].tls.as_ref().unwrap();
    assert!(tls.client_auth.is_some());
    assert_eq!(tls.options.crt_list, std::slice::from_ref(&list));
    assert_eq!(tls.options.crl_file.as_deref(), Some(Path::new(crl)));
    let v = c.backends[0].servers[3].ssl.as_ref().unwrap();
    assert_eq!(v.options.crl_file.as_deref(), Some(crl));
    let s = &c.backends[0].servers;
    assert_eq!(s[0].ssl.as_ref().unwrap().options.crt.as_deref(), Some(pem));
    assert!(
        s[0].check_tls.is_some(),
        "an ssl server is checked over TLS"
    );
    assert!(
        s[1].ssl.is_none() && s[1].check_tls.is_some(),
        "check-ssl alone"
    );
    assert!(s[2].check_tls.is_none(), "a check port needs check-ssl");
    let e = err(&text.replace("\"optional\"", "\"sometimes\""));
    assert!(e.contains("expected none, optional or required"), "{e}");
    // A missing crl-file or one without a CRL: an error at its line.
    for (bad, why) in [
        ("/nonexistent/crl.pem", "No such file"),
        (pem, "no certificate revocation list"),
    ] {
        let e = err(&text.replacen(crl, bad, 1));
        assert!(
            e.contains("t.toml:5:") && e.contains(&format!("crl-file {bad}: ")) && e.contains(why),
            "{e}"
        );
        let at = text.rfind(crl).unwrap();
        let bad_server = format!("{}{bad}{}", &text[..at], &text[at + crl.len()..]);
        // Pointed at the value's opening quote.
        let line = bad_server.lines().nth(14).unwrap();
        let col = line.rfind(bad).unwrap();
        let e = err(&bad_server);
        assert!(
            e.contains(&format!("t.toml:15:{col}:"))
                && e.contains(&format!("crl-file {bad}: "))
                && e.contains(why),
            "{e}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

const TCP_REQUEST: &str = r#"
[[frontend]]
name = "fe"
bind = ["127.0.0.1:9000"]
tcp-request = { inspect-delay = "5s", content = ["accept if { req_ssl_hello_type 1 }", "reject"] }
use-backend = [{ backend = "b2", if = "{ req.ssl_sni -i b.test }" }]
default-backend = "be"

[[backend]]
name = "be"
servers = [{ name = "a", address = "127.0.0.1:8000" }]

[[backend]]
name = "b2"
servers = [{ name = "a", address = "127.0.0.1:8001" }]
"#;

const TCP_REQUEST_CFG: &str = "frontend fe
    mode tcp
    bind 127.0.0.1:9000
    tcp-request inspect-delay 5s
    tcp-request content accept if { req_ssl_hello_type 1 }
    tcp-request content reject
    use_backend b2 if { req.ssl_sni -i b.test }
    default_backend be
backend be
    mode tcp
    server a 127.0.0.1:8000
backend b2
    mode tcp
    server a 127.0.0.1:8001
";

fn haproxy_cfg(text: &str) -> Result<Config, String> {
    super::parse_haproxy(
        &[(std::path::PathBuf::from("h.cfg"), text.to_string())],
        false,
        &|_| None,
    )
    .map(|l| l.config)
    .map_err(|e| e.to_string())
}

#[test]
fn tcp_request_in_toml_and_haproxy_cfg() {
    let t = parse_str(TCP_REQUEST, Path::new("t.toml")).unwrap();
    let h = haproxy_cfg(TCP_REQUEST_CFG).unwrap();
    for c in [&t, &h] {
        let fe = &c.frontends[0];
        assert_eq!(fe.tcp_inspect_delay, Some(Duration::from_secs(5)));
        assert_eq!(fe.tcp_content.len(), 2);
        let rules = fe.rules.get().unwrap();
        assert_eq!(rules.tcp_content.len(), 2);
        assert!(rules.tcp_content[0].accept && rules.tcp_content[0].cond.is_some());
        assert!(!rules.tcp_content[1].accept && rules.tcp_content[1].cond.is_none());
    }
}

#[test]
fn tcp_request_refusals_point_at_the_rule() {
    let e = err(&TCP_REQUEST.replace("\"reject\"", "\"reject if { nope 1 }\""));
    assert!(
        e.starts_with(
            "t.toml:5:101: frontend \"fe\": tcp-request content: unknown fetch method \"nope\""
        ),
        "{e}"
    );
    let e = err(&TCP_REQUEST.replace("\"reject\"", "\"silent-drop\""));
    assert!(
        e.contains("\"silent-drop\" is not a supported tcp-request content action"),
        "{e}"
    );
    let e = err(&TCP_REQUEST.replace("name = \"fe\"", "name = \"fe\"\nmode = \"http\""));
    assert!(e.contains("tcp-request: supported in mode tcp only"), "{e}");
    let e = err(&TCP_REQUEST.replace(
        "servers = [{ name = \"a\", address = \"127.0.0.1:8001\" }]",
        "servers = [{ name = \"a\", address = \"127.0.0.1:8001\" }]\ntcp-request = { content = [\"reject\"] }",
    ));
    assert!(e.contains("tcp-request"), "{e}");
    let e = haproxy_cfg(
        &TCP_REQUEST_CFG.replace("reject\n", "reject if { req.payload(0) -m found }\n"),
    )
    .unwrap_err();
    assert!(e.starts_with("h.cfg:6:"), "{e}");
    assert!(e.contains("req.payload"), "{e}");
    let e =
        haproxy_cfg(&TCP_REQUEST_CFG.replace("inspect-delay 5s", "connection reject")).unwrap_err();
    assert!(
        e.contains("unsupported keyword \"tcp-request connection\""),
        "{e}"
    );
}
