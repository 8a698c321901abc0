use super::*;
use std::net::SocketAddr;

struct Cnt;
impl Counters for Cnt {
    fn nbsrv(&self, b: usize) -> u32 {
        [2, 0][b]
    }
    fn be_conn(&self, b: usize) -> u32 {
        [7, 1][b]
    }
    fn fe_conn(&self) -> u32 {
        42
    }
}

static TLS: crate::tls::TlsInfo = crate::tls::TlsInfo {
    sni: None,
    version: "TLSv1.3",
    cipher: "TLS_AES_128_GCM_SHA256",
    alpn: None,
    resumed: false,
    client_cert: None,
};

const REQ: &[u8] = b"GET /api/v1/Items.JSON?id=7&x=a&id=9 HTTP/1.1\r\nHost: WWW.Example.com\r\nX-Fwd: a, b,c\r\nX-Fwd: d\r\nCookie: SRV=s1; lang=fr\r\nCookie: t=1\r\nContent-Length: 3\r\n\r\n";

fn env() -> Env {
    Env {
        backends: vec!["app".into(), "static".into()],
        ..Env::default()
    }
}

/// Evaluates ACL text against `raw` from 10.1.2.3:5555 to 192.168.0.1:80.
fn eval_on(raw: &[u8], acl: &str) -> bool {
    eval_with(raw, None, acl)
}

fn eval_with(raw: &[u8], res: Option<&[u8]>, acl: &str) -> bool {
    let mut e = env();
    e.response = res.is_some();
    let mut set = AclSet::new();
    let predefined = PREDEFINED.iter().any(|(n, _)| {
        acl.split(' ')
            .all(|w| w == *n || PREDEFINED.iter().any(|(m, _)| *m == w))
            && !n.is_empty()
    });
    let cond = if predefined {
        set.cond_str(acl, false, &mut e).unwrap()
    } else {
        set.define("a", acl, &mut e)
            .unwrap_or_else(|e| panic!("{acl}: {e:?}"));
        set.cond_str("a", false, &mut e).unwrap()
    };
    let req = Message::parse_request(raw).expect("request");
    let res = res.map(|r| Message::parse_response(r).expect("response"));
    let vars = Vars::default();
    let ctx = Ctx {
        req: &req,
        res: res.as_ref(),
        client: "10.1.2.3:5555".parse::<SocketAddr>().unwrap(),
        local: "192.168.0.1:80".parse().unwrap(),
        tls: None,
        backend: Some(0),
        counters: &Cnt,
        vars: &vars,
        inspect: None,
    };
    cond.eval(&set, &ctx, &mut Scratch::default())
}

fn ev(acl: &str) -> bool {
    eval_on(REQ, acl)
}

fn err(acl: &str) -> Error {
    let mut e = env();
    let mut set = AclSet::new();
    set.define("a", acl, &mut e).unwrap_err()
}

#[test]
fn path_family() {
    assert!(ev("path /api/v1/Items.JSON"));
    assert!(!ev("path /api/v1/items.json"));
    assert!(ev("path -i /api/v1/items.json"));
    assert!(ev("path_beg /api/ /static/"));
    assert!(!ev("path_beg /static/"));
    assert!(ev("path_beg -i /API/"));
    assert!(ev("path_end .JSON"));
    assert!(!ev("path_end .json"));
    assert!(ev("path_end -i .json .xml"));
    assert!(ev("path_sub v1/"));
    assert!(ev("path_sub -i items"));
    assert!(ev("path_reg ^/api/v[0-9]+/"));
    assert!(!ev("path_reg ^/API/"));
    assert!(ev("path_reg -i ^/API/"));
    assert!(ev("path_dir v1"));
    assert!(!ev("path_dir v"));
    assert!(ev("path_len 18"));
    assert!(ev("path_len gt 10"));
    assert!(ev("path -m beg /api"));
    assert!(ev("path -m found"));
    assert!(ev("path -m len 18"));
}

#[test]
fn url_query_param_method() {
    assert!(ev("url /api/v1/Items.JSON?id=7&x=a&id=9"));
    assert!(ev("url_beg /api/v1/Items.JSON?id"));
    assert!(ev("url_end id=9"));
    assert!(ev("url_sub x=a"));
    assert!(ev("query id=7&x=a&id=9"));
    assert!(!eval_on(b"GET / HTTP/1.1\r\n\r\n", "query -m found"));
    assert!(eval_on(b"GET /? HTTP/1.1\r\n\r\n", "query -m found"));
    assert!(ev("url_param(id) 9"), "any occurrence");
    assert!(ev("urlp(x) a"));
    assert!(!ev("url_param(y) -m found"));
    assert!(ev("url_param(id) -m int ge 8"));
    assert!(ev("method GET"));
    assert!(!ev("method get"));
    assert!(!ev("method -i get"), "known methods match by identity");
    assert!(eval_on(b"PURGE / HTTP/1.1\r\n\r\n", "method -i purge"));
    assert!(!eval_on(b"PURGE / HTTP/1.1\r\n\r\n", "method purge"));
    assert!(eval_on(
        b"GET http://h.example/a/b?q=1 HTTP/1.1\r\nHost: h.example\r\n\r\n",
        "path /a/b"
    ));
    assert!(eval_on(
        b"GET http://h.example/a HTTP/1.1\r\nHost: h\r\n\r\n",
        "HTTP_URL_ABS"
    ));
}

#[test]
fn headers() {
    assert!(ev("hdr(host) -i www.example.com"));
    assert!(!ev("hdr(host) www.example.com"));
    assert!(ev("hdr(HOST) WWW.Example.com"), "names case-insensitive");
    assert!(ev("hdr_beg(host) -i www."));
    assert!(ev("hdr_end(host) .com"));
    assert!(ev("hdr_sub(host) Example"));
    assert!(ev("hdr_reg(host) ^WWW\\."));
    assert!(ev("hdr_dom(host) -i example.com"));
    assert!(!ev("hdr_dom(host) -i ample.com"));
    assert!(ev("hdr(x-fwd) c"), "comma-separated values, any occurrence");
    assert!(ev("hdr(x-fwd) d"));
    assert!(ev("hdr_cnt(x-fwd) 4"));
    assert!(ev("hdr_cnt(x-fwd) eq 4"));
    assert!(ev("hdr_cnt(x-nope) 0"));
    assert!(ev("req.hdr(x-fwd,1) a"));
    assert!(!ev("req.hdr(x-fwd,1) b"));
    assert!(ev("req.hdr(x-fwd,2) b"));
    assert!(ev("req.hdr(x-fwd,-1) d"));
    assert!(!ev("req.hdr(x-fwd,-1) a"));
    assert!(!ev("req.hdr(x-fwd,9) -m found"));
    assert!(ev("req.fhdr(x-fwd) \"a, b,c\""));
    assert!(ev("hdr_val(content-length) 3"));
    assert!(ev("HTTP_CONTENT"));
    assert!(!ev("hdr(x-missing) -m found"));
    assert!(!ev("hdr(x-missing) -m len 0"), "missing: no match");
    assert!(ev("hdr_len(host) 15"));
    assert!(ev("req.hdr(host),lower www.example.com"));
    assert!(eval_on(
        b"GET / HTTP/1.1\r\nX-Real-IP: 10.9.8.7\r\n\r\n",
        "hdr_ip(x-real-ip) 10.0.0.0/8"
    ));
}

#[test]
fn cookies() {
    assert!(ev("req.cook(SRV) s1"));
    assert!(ev("cook(lang) fr"));
    assert!(ev("req.cook(t) -m int 1"));
    assert!(
        !ev("req.cook(srv) -m found"),
        "cookie names are case-sensitive"
    );
    assert!(ev("req.cook_cnt(SRV) 1"));
    assert!(ev("req.cook_cnt 3"));
    assert!(ev("cook_beg(lang) f"));
}

#[test]
fn addresses_ports_counters() {
    assert!(ev("src 10.0.0.0/8"));
    assert!(ev("src 10.1.2.3"));
    assert!(!ev("src 10.1.2.4"));
    assert!(ev("src 192.168.0.0/16 10.1.0.0/255.255.0.0"));
    assert!(!ev("src ::1"));
    assert!(!ev("LOCALHOST"));
    assert!(ev("src_port 5555"));
    assert!(ev("src_port 5000:6000"));
    assert!(ev("src_port ge 5555"));
    assert!(!ev("src_port gt 5555"));
    assert!(ev("src_port le 5555"));
    assert!(!ev("src_port lt 5555"));
    assert!(ev("src_port 1024:"));
    assert!(ev("src_port :6000"));
    assert!(ev("dst 192.168.0.1"));
    assert!(ev("dst_port 80"));
    assert!(!ev("ssl_fc"));
    assert!(!ev("ssl_fc 0"), "patterns of a boolean are ignored");
    assert!(!ev("ssl_fc 1"));
    assert!(ev("always_true 0"));
    assert!(ev("nbsrv(app) 2"));
    assert!(ev("nbsrv(static) lt 1"));
    assert!(ev("nbsrv ge 2"), "current backend");
    assert!(ev("be_conn(static) 1"));
    assert!(ev("be_conn 7"));
    assert!(ev("fe_conn gt 40"));
    assert!(ev("always_true"));
    assert!(!ev("always_false"));
    assert!(ev("TRUE"));
    assert!(!ev("FALSE"));
    assert!(ev("src -m ip 10.1.2.3"));
}

#[test]
fn ipv6_client() {
    let mut e = env();
    let mut set = AclSet::new();
    set.define("v6", "src 2001:db8::/32", &mut e).unwrap();
    set.define("lh", "src 127.0.0.1", &mut e).unwrap();
    let req = Message::parse_request(REQ).unwrap();
    let vars = Vars::default();
    let mk = |client: &str| Ctx {
        req: &req,
        res: None,
        client: client.parse().unwrap(),
        local: "[::1]:80".parse().unwrap(),
        tls: Some(&TLS),
        backend: None,
        counters: &NoCounters,
        vars: &vars,
        inspect: None,
    };
    let mut s = Scratch::default();
    let c = set.cond_str("v6", false, &mut e).unwrap();
    assert!(c.eval(&set, &mk("[2001:db8::5]:1"), &mut s));
    assert!(!c.eval(&set, &mk("[2001:db9::5]:1"), &mut s));
    let c = set.cond_str("lh LOCALHOST", false, &mut e).unwrap();
    assert!(
        c.eval(&set, &mk("[::ffff:127.0.0.1]:1"), &mut s),
        "v4-mapped"
    );
    let c = set
        .cond_str("{ ssl_fc } { nbsrv -m found }", false, &mut e)
        .unwrap();
    assert!(
        !c.eval(&set, &mk("[::1]:1"), &mut s),
        "no backend: no nbsrv"
    );
    let c = set.cond_str("{ ssl_fc }", false, &mut e).unwrap();
    assert!(c.eval(&set, &mk("[::1]:1"), &mut s));
    let c = set
        .cond_str(
            "{ ssl_fc_protocol TLSv1.3 } { ssl_fc_cipher -m beg TLS_AES_ }",
            false,
            &mut e,
        )
        .unwrap();
    assert!(c.eval(&set, &mk("[::1]:1"), &mut s));
    // No SNI: no sample, so neither a match nor a negated match's miss.
    let c = set
        .cond_str("{ ssl_fc_sni -m found }", false, &mut e)
        .unwrap();
    assert!(!c.eval(&set, &mk("[::1]:1"), &mut s));
    let c = set.cond_str("!{ ssl_fc_has_sni }", false, &mut e).unwrap();
    assert!(c.eval(&set, &mk("[::1]:1"), &mut s));
}

#[test]
fn predefined() {
    assert!(ev("METH_GET"));
    assert!(!ev("METH_POST"));
    assert!(ev("HTTP_1.1"));
    assert!(!ev("HTTP_1.0"));
    assert!(ev("HTTP_URL_SLASH"));
    assert!(ev("HTTP"));
    assert!(!ev("REQ_CONTENT"));
    assert!(ev("WAIT_END"));
    assert!(eval_on(b"HEAD / HTTP/1.0\r\n\r\n", "METH_GET"));
    assert!(eval_on(b"POST / HTTP/1.0\r\n\r\n", "METH_POST HTTP_1.0"));
}

#[test]
fn conditions() {
    let mut e = env();
    let mut set = AclSet::new();
    set.define("api", "path_beg /api/", &mut e).unwrap();
    set.define("static", "path_end .css .js", &mut e).unwrap();
    set.define("host", "hdr(host) -i www.example.com", &mut e)
        .unwrap();
    // Several definitions of one name are OR'ed.
    set.define("multi", "path /nope", &mut e).unwrap();
    set.define("multi", "method GET", &mut e).unwrap();
    set.define("two", "path /nope\nsrc 10.0.0.0/8", &mut e)
        .unwrap();
    let req = Message::parse_request(REQ).unwrap();
    let vars = Vars::default();
    let ctx = Ctx {
        req: &req,
        res: None,
        client: "10.1.2.3:5555".parse().unwrap(),
        local: "192.168.0.1:80".parse().unwrap(),
        tls: None,
        backend: None,
        counters: &NoCounters,
        vars: &vars,
        inspect: None,
    };
    let mut s = Scratch::default();
    let mut check = |text: &str, unless: bool| {
        let c = set.cond_str(text, unless, &mut e).unwrap();
        c.eval(&set, &ctx, &mut s)
    };
    assert!(check("api host", false));
    assert!(!check("api static", false));
    assert!(check("api !static", false));
    assert!(check("api ! static", false));
    assert!(check("static || api", false));
    assert!(check("static or api", false));
    assert!(!check("static || !api", false));
    assert!(check("static || api host", false));
    assert!(!check("api", true), "unless");
    assert!(check("static", true));
    assert!(check("multi", false));
    assert!(check("two", false));
    assert!(check("{ path_beg /api } { src 10.0.0.0/8 }", false));
    assert!(check("!{ path_beg /x }", false));
    assert!(check("{ hdr(host) -m str \"WWW.Example.com\" }", false));
}

#[test]
fn response_side() {
    let res: &[u8] =
        b"HTTP/1.1 503 Service Unavailable\r\nServer: nginx\r\nSet-Cookie: S=abc; path=/\r\n\r\n";
    assert!(eval_with(REQ, Some(res), "status 503"));
    assert!(eval_with(REQ, Some(res), "status ge 500"));
    assert!(eval_with(REQ, Some(res), "status 500:599"));
    assert!(!eval_with(REQ, Some(res), "status 200"));
    assert!(eval_with(REQ, Some(res), "res.hdr(server) nginx"));
    assert!(eval_with(REQ, Some(res), "shdr_beg(server) ng"));
    assert!(eval_with(REQ, Some(res), "res.cook(S) abc"));
    // Refused on the request side.
    let e = err("status 200");
    assert_eq!(e.at, 0);
    assert!(e.msg.contains("response"), "{e:?}");
}

#[test]
fn vars_and_converters() {
    let mut e = env();
    let mut set = AclSet::new();
    set.define("v", "var(txn.tier) gold", &mut e).unwrap();
    set.define("dom", "hdr(host),lower,field(2,.) example", &mut e)
        .unwrap();
    set.define("w", "path,word(2,/) v1", &mut e).unwrap();
    set.define("rs", "path,regsub(^/api,/x) -m beg /x/v1", &mut e)
        .unwrap();
    set.define("up", "method,upper,hex 474554", &mut e).unwrap();
    set.define("b64", "req.cook(lang),base64 ZnI=", &mut e)
        .unwrap();
    let id = e.var("txn.tier", 0).unwrap();
    let req = Message::parse_request(REQ).unwrap();
    let mut vars = Vars::default();
    vars.set(id, b"gold");
    let ctx = Ctx {
        req: &req,
        res: None,
        client: "10.1.2.3:5555".parse().unwrap(),
        local: "192.168.0.1:80".parse().unwrap(),
        tls: None,
        backend: None,
        counters: &NoCounters,
        vars: &vars,
        inspect: None,
    };
    let mut s = Scratch::default();
    for name in ["v", "dom", "w", "rs", "up", "b64"] {
        let c = set.cond_str(name, false, &mut e).unwrap();
        assert!(c.eval(&set, &ctx, &mut s), "{name}");
    }
}

#[test]
fn errors_have_offsets() {
    let e = err("path_reg -i ^(/api");
    assert_eq!(e.at, 12);
    assert!(e.msg.contains("regex"), "{e:?}");
    let e = err("pathx /a");
    assert_eq!(e.at, 0);
    assert!(e.msg.contains("unknown fetch"), "{e:?}");
    let e = err("path -m foo /a");
    assert_eq!(e.at, 8);
    let e = err("path -z /a");
    assert_eq!(e.at, 5);
    let e = err("src 10.0.0.300");
    assert_eq!(e.at, 4);
    let e = err("src_port ge");
    assert!(e.msg.contains("needs a value"));
    let e = err("nbsrv(nope) 1");
    assert_eq!(e.at, 6);
    let e = err("hdr_beg(host");
    assert!(e.msg.contains("')'"), "{e:?}");
    let e = err("path \"/a");
    assert_eq!(e.at, 5);
    let e = err("path -f /nonexistent/x.lst");
    assert_eq!(e.at, 8);
    let e = err("http_auth(nolist)");
    assert_eq!(e.at, 10);
    let e = err("var(x) 1");
    assert_eq!(e.at, 4);
    // Second line of a multi-line definition.
    let e = err("path /a\nurl_reg (");
    assert_eq!(e.at, 16);
    let mut env = env();
    let mut set = AclSet::new();
    set.define("a", "path /", &mut env).unwrap();
    let e = set
        .cond_str("a  undefined_acl", false, &mut env)
        .unwrap_err();
    assert_eq!(e.at, 3);
    assert!(e.msg.contains("not defined"));
    let e = set.cond_str("a !nope", false, &mut env).unwrap_err();
    assert_eq!(e.at, 3);
    let e = set.cond_str("a ||", false, &mut env).unwrap_err();
    assert!(e.msg.contains("incomplete"));
    let e = set.cond_str("{ path /a", false, &mut env).unwrap_err();
    assert_eq!(e.at, 0);
    let e = set.cond_str("|| a", false, &mut env).unwrap_err();
    assert_eq!(e.at, 0);
    let e = set.cond_str("{ path_reg ( }", false, &mut env).unwrap_err();
    assert_eq!(e.at, 11);
}

#[test]
fn double_dash_and_quoted_patterns() {
    assert!(eval_on(b"GET /-i HTTP/1.1\r\n\r\n", "path -- /-i"));
    assert!(eval_on(
        b"GET /a%20b HTTP/1.1\r\nX: a b\r\n\r\n",
        "req.fhdr(x) 'a b'"
    ));
    assert!(eval_on(b"GET / HTTP/1.1\r\nX: -5\r\n\r\n", "hdr_val(x) -5"));
    assert!(eval_on(
        b"GET / HTTP/1.1\r\nX: -5\r\n\r\n",
        "hdr_val(x) lt 0"
    ));
}

#[test]
fn pattern_file_of_ten_thousand_paths() {
    let dir = tempfile::tempdir().unwrap();
    let exact = dir.path().join("paths.lst");
    let mut text = String::from("# generated\n\n");
    for i in 0..10_000 {
        text.push_str(&format!("/p/{i}/item\n"));
    }
    std::fs::write(&exact, &text).unwrap();
    let f = exact.display().to_string();
    let req = |p: &str| format!("GET {p} HTTP/1.1\r\n\r\n").into_bytes();
    assert!(eval_on(&req("/p/9999/item"), &format!("path -f {f}")));
    assert!(eval_on(&req("/p/0/item"), &format!("path -f {f}")));
    assert!(!eval_on(&req("/p/10000/item"), &format!("path -f {f}")));
    assert!(eval_on(&req("/P/77/ITEM"), &format!("path -i -f {f}")));
    assert!(eval_on(&req("/p/5000/item/x"), &format!("path_beg -f {f}")));
    assert!(!eval_on(&req("/p/5000/ite"), &format!("path_beg -f {f}")));
    assert!(eval_on(&req("/x/p/42/item"), &format!("path_end -f {f}")));
    // Speed: 10,000 lookups in a 10,000-pattern set stay well under a second
    // even in a debug build (a linear scan would be 10^8 comparisons).
    let mut e = env();
    let mut set = AclSet::new();
    set.define("big", &format!("path_beg -f {f}"), &mut e)
        .unwrap();
    let c = set.cond_str("big", false, &mut e).unwrap();
    let m = Message::parse_request(&req("/q/1/item")).unwrap();
    let vars = Vars::default();
    let ctx = Ctx {
        req: &m,
        res: None,
        client: "10.1.2.3:5555".parse().unwrap(),
        local: "192.168.0.1:80".parse().unwrap(),
        tls: None,
        backend: None,
        counters: &NoCounters,
        vars: &vars,
        inspect: None,
    };
    let start = std::time::Instant::now();
    let mut s = Scratch::default();
    for _ in 0..10_000 {
        assert!(!c.eval(&set, &ctx, &mut s));
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn http_auth_fetches() {
    let mut e = env();
    e.userlists.push(std::sync::Arc::new(
        Userlist::parse(
            "L",
            &[
                "group admins",
                "user bob insecure-password secret groups admins",
            ],
        )
        .unwrap(),
    ));
    let mut set = AclSet::new();
    set.define("ok", "http_auth(L)", &mut e).unwrap();
    set.define("adm", "http_auth_group(L) admins", &mut e)
        .unwrap();
    let good =
        Message::parse_request(b"GET / HTTP/1.1\r\nAuthorization: Basic Ym9iOnNlY3JldA==\r\n\r\n")
            .unwrap();
    let bad =
        Message::parse_request(b"GET / HTTP/1.1\r\nAuthorization: Basic Ym9iOnNlY3JldTE=\r\n\r\n")
            .unwrap();
    let vars = Vars::default();
    let mut s = Scratch::default();
    for (m, want) in [(&good, true), (&bad, false)] {
        let ctx = Ctx {
            req: m,
            res: None,
            client: "10.1.2.3:5555".parse().unwrap(),
            local: "192.168.0.1:80".parse().unwrap(),
            tls: None,
            backend: None,
            counters: &NoCounters,
            vars: &vars,
            inspect: None,
        };
        for n in ["ok", "adm"] {
            let c = set.cond_str(n, false, &mut e).unwrap();
            assert_eq!(c.eval(&set, &ctx, &mut s), want, "{n}");
        }
    }
}

#[test]
fn every_match_method_by_flag() {
    assert!(ev("hdr(host) -m str WWW.Example.com"));
    assert!(ev("hdr(host) -m str -i www.example.com"));
    assert!(ev("hdr(host) -m beg WWW"));
    assert!(ev("hdr(host) -m end .com"));
    assert!(ev("hdr(host) -m sub Exam"));
    assert!(!ev("hdr(host) -m sub exam"));
    assert!(ev("hdr(host) -m reg ^W+\\.Ex"));
    assert!(ev("hdr(host) -m dom Example"));
    assert!(ev("path -m dir api"));
    assert!(ev("path -m len 10:20"));
    assert!(ev("hdr(content-length) -m int 3"));
    assert!(ev("hdr(content-length) -m int ge 3"));
    assert!(ev("hdr(content-length) -m int le 3"));
    assert!(!ev("hdr(content-length) -m int lt 3"));
    assert!(ev("hdr(content-length) -m int gt 2"));
    assert!(ev("hdr(content-length) -m int eq 3"));
    assert!(ev("hdr(content-length) -m bool"));
    assert!(ev("hdr(x-fwd) -m found"));
    assert!(ev("src -m ip 10.0.0.0/8"));
    assert!(eval_on(
        b"GET / HTTP/1.1\r\nX-IP: 10.1.1.1\r\n\r\n",
        "hdr(x-ip) -m ip 10.0.0.0/8"
    ));
    assert!(ev("src_port -m str 5555"), "an integer matched as text");
    assert!(!ev("ssl_fc -m bool"));
    assert!(ev("fe_conn -m bool"));
}

#[test]
fn date_rand_be_name_and_all_header_count() {
    struct Clock;
    impl Counters for Clock {
        fn unix_time(&self) -> u64 {
            1_700_000_000
        }
        fn random(&self) -> u64 {
            0x8000_0000
        }
        fn server_name(&self) -> Option<&str> {
            Some("s1")
        }
        fn frontend_name(&self) -> Option<&str> {
            Some("www")
        }
    }
    let mut e = env();
    let mut set = AclSet::new();
    set.define("d", "date gt 1600000000", &mut e).unwrap();
    set.define("d2", "date(-100) 1699999900", &mut e).unwrap();
    set.define("r", "rand(10) 5", &mut e).unwrap();
    set.define("be", "be_name static", &mut e).unwrap();
    set.define("all", "hdr_cnt 8", &mut e).unwrap();
    set.define("srv", "srv_name s1", &mut e).unwrap();
    set.define("fe", "fe_name www", &mut e).unwrap();
    let req = Message::parse_request(REQ).unwrap();
    let vars = Vars::default();
    let ctx = Ctx {
        req: &req,
        res: None,
        client: "10.1.2.3:5555".parse().unwrap(),
        local: "192.168.0.1:80".parse().unwrap(),
        tls: None,
        backend: Some(1),
        counters: &Clock,
        vars: &vars,
        inspect: None,
    };
    let mut s = Scratch::default();
    for n in ["d", "d2", "r", "be", "all", "srv", "fe"] {
        let c = set.cond_str(n, false, &mut e).unwrap();
        assert!(c.eval(&set, &ctx, &mut s), "{n}");
    }
}

/// `tcp-request content` conditions on peeked bytes: `None` (HAProxy's
/// ACL_TEST_MISS) while more bytes could decide, a final answer otherwise.
fn test_on(bytes: &[u8], last: bool, cond: &str) -> Option<bool> {
    let mut e = env();
    let mut set = AclSet::new();
    let c = set.cond_str(cond, false, &mut e).unwrap();
    let req = Message::default();
    let vars = Vars::default();
    let inspect = super::payload::Inspect {
        data: bytes.to_vec(),
        max: 16384,
        last,
        ..Default::default()
    };
    let ctx = Ctx {
        req: &req,
        res: None,
        client: "10.1.2.3:5555".parse::<SocketAddr>().unwrap(),
        local: "192.168.0.1:80".parse().unwrap(),
        tls: None,
        backend: Some(0),
        counters: &Cnt,
        vars: &vars,
        inspect: Some(&inspect),
    };
    c.test(&set, &ctx, &mut Scratch::default())
}

#[test]
fn payload_conditions_wait_for_bytes_that_may_change_them() {
    let hs = [0x16, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0];
    assert_eq!(test_on(b"", false, "{ req_ssl_hello_type 1 }"), None);
    assert_eq!(test_on(b"", true, "{ req_ssl_hello_type 1 }"), Some(false));
    assert_eq!(test_on(&hs[..7], false, "{ req.ssl_hello_type 1 }"), None);
    assert_eq!(test_on(&hs, false, "{ req.ssl_hello_type 1 }"), Some(true));
    assert_eq!(
        test_on(b"GET /", false, "{ req_ssl_hello_type 1 }"),
        Some(false)
    );
    assert_eq!(
        test_on(b"GET /", false, "!{ req_ssl_hello_type 1 }"),
        Some(true)
    );
    // A MISS stays a MISS under `!`; FAIL AND MISS is FAIL; PASS OR MISS is PASS.
    assert_eq!(test_on(b"", false, "!{ req_ssl_hello_type 1 }"), None);
    assert_eq!(
        test_on(b"", false, "FALSE { req_ssl_hello_type 1 }"),
        Some(false)
    );
    assert_eq!(
        test_on(b"", false, "TRUE || { req_ssl_hello_type 1 }"),
        Some(true)
    );
    // req.len may always grow: a failed match waits, a passed one does not.
    assert_eq!(test_on(b"ab", false, "{ req.len ge 3 }"), None);
    assert_eq!(test_on(b"abc", false, "{ req.len ge 3 }"), Some(true));
    assert_eq!(test_on(b"ab", true, "{ req.len ge 3 }"), Some(false));
    assert_eq!(
        test_on(b"abc", false, "{ req.payload(1,2) -m str bc }"),
        Some(true)
    );
    assert_eq!(
        test_on(b"ab", false, "{ req.payload(1,2) -m str bc }"),
        None
    );
}
