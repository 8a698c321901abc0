//! The test-config builder (`support::config`): what it writes is valid ringlb
//! TOML, and every piece set comes back from `ringlb::config::parse_str`.

mod support;

use std::path::Path;
use std::time::Duration;

use ringlb::config::model::{Balance, Mode, ProxyProtocol};
use support::config::q;
use support::*;

fn parse(text: &str) -> ringlb::config::model::Config {
    ringlb::config::parse_str(text, Path::new("t.toml"))
        .unwrap_or_else(|e| panic!("{e}\n--- config ---\n{text}"))
}

#[test]
fn a_full_config_parses_and_round_trips() {
    let text = Cfg::new()
        .global("maxconn = 5000")
        .global("hard-stop-after = \"3s\"")
        .admin_socket("/tmp/admin.sock")
        .log("/tmp/x \"quoted\" \\ path.log")
        .log_with("udp://127.0.0.1:514", "facility = \"local1\", level = \"warning\"")
        .mode("tcp")
        .log_global("tcplog")
        .defaults("retries = 2")
        .timeout("queue", "9s")
        .timeouts("2s", "30s", "31s")
        .timeout("queue", "10s")
        .frontend(
            Proxy::new("fe")
                .port(18001)
                .bind_with("127.0.0.1:18002", "accept-proxy = true")
                .default_backend("b")
                .extra("maxconn = 7")
                .log("/tmp/fe.log")
                .timeout("client", "5s"),
        )
        .backend(
            Proxy::new("b")
                .balance("leastconn")
                .server("s1", "127.0.0.1:19001")
                .server_with("s2", "127.0.0.1:19002", "weight = 3, maxconn = 4, send-proxy = \"v2\""),
        )
        .listen(Proxy::new("l").bind("127.0.0.1:18003").server("s", "127.0.0.1:19003"))
        .listen(
            Proxy::new("stats")
                .port(18004)
                .mode("http")
                .stats(r#"uri = "/st", auth = ["admin:admin"]"#),
        )
        .raw("[[backend]]\nname = \"spare\"\nservers = [{ name = \"x\", address = \"127.0.0.1:19004\" }]\n")
        .build();
    let c = parse(&text);
    assert_eq!(c.global.maxconn, 5000);
    assert_eq!(c.global.hard_stop_after, Some(Duration::from_secs(3)));
    assert_eq!(c.global.log.len(), 2, "{text}");
    assert_eq!(c.global.log[1].facility, 17);
    assert_eq!(c.global.log[1].level, 4);

    let fe = c.frontends.iter().find(|f| f.name == "fe").unwrap();
    assert_eq!(fe.mode, Mode::Tcp);
    assert_eq!(fe.maxconn, 7);
    assert_eq!(fe.binds.len(), 2);
    assert_eq!(fe.binds[0].addr, "127.0.0.1:18001".parse().unwrap());
    assert!(!fe.binds[0].accept_proxy);
    assert_eq!(fe.binds[1].addr, "127.0.0.1:18002".parse().unwrap());
    assert!(fe.binds[1].accept_proxy);
    assert_eq!(fe.log.len(), 1);
    assert_eq!(fe.timeouts.client, Some(Duration::from_secs(5)));
    assert_eq!(c.backends[fe.default_backend.unwrap()].name, "b");

    let b = c.backends.iter().find(|b| b.name == "b").unwrap();
    assert_eq!(b.balance, Balance::LeastConn);
    assert_eq!(b.retries, 2);
    assert_eq!(b.timeouts.connect, Some(Duration::from_secs(2)));
    assert_eq!(b.timeouts.server, Some(Duration::from_secs(31)));
    assert_eq!(b.timeouts.queue, Some(Duration::from_secs(10)));
    assert_eq!(b.servers.len(), 2);
    assert_eq!(b.servers[0].name, "s1");
    assert_eq!(b.servers[0].addr, "127.0.0.1:19001".parse().unwrap());
    assert_eq!((b.servers[1].weight, b.servers[1].maxconn), (3, 4));
    assert_eq!(b.servers[1].send_proxy, Some(ProxyProtocol::V2));

    assert!(c.frontends.iter().any(|f| f.name == "l"));
    let l = c.backends.iter().find(|b| b.name == "l").unwrap();
    assert_eq!(l.servers[0].addr, "127.0.0.1:19003".parse().unwrap());
    assert!(c.backends.iter().any(|b| b.name == "spare"));
    assert_eq!(
        c.global.admin_socket.as_deref(),
        Some(Path::new("/tmp/admin.sock"))
    );
    let st = c.frontends.iter().find(|f| f.name == "stats").unwrap();
    assert_eq!(st.mode, Mode::Http);
    assert_eq!(st.stats.as_ref().unwrap().uri, "/st");
    assert_eq!(st.stats.as_ref().unwrap().auth, ["admin:admin"]);
}

#[test]
fn timeouts_replace_earlier_ones_and_empty_parts_are_left_out() {
    let text = Cfg::new()
        .global("")
        .defaults("")
        .timeouts("1s", "2s", "3s")
        .timeout("http-request", "4s")
        .timeouts("5s", "6s", "7s")
        .listen(
            Proxy::new("l")
                .port(18005)
                .extra("")
                .server_with("s", "127.0.0.1:1", " "),
        )
        .build();
    assert!(!text.contains("[global]"), "{text}");
    assert!(!text.contains("http-request"), "{text}");
    let c = parse(&text);
    let l = &c.backends[0];
    assert_eq!(l.timeouts.connect, Some(Duration::from_secs(5)));
    assert_eq!(l.timeouts.http_request, None);
    assert_eq!(c.frontends[0].timeouts.client, Some(Duration::from_secs(6)));
}

#[test]
fn an_empty_config_is_empty_and_strings_are_escaped() {
    assert_eq!(Cfg::new().build(), "");
    assert_eq!(q("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
}
