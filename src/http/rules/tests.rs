#![allow(clippy::field_reassign_with_default)]

use super::cookie::{on_request, on_response, ServerView, Stick};
use super::*;
use crate::config::model::CookieSpec;
use crate::http::acl::{NoCounters, Userlist};
use std::sync::Arc;

const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

fn env() -> Env {
    let ul = Userlist::parse(
        "L",
        &[
            "group admins",
            "user bob insecure-password secret",
            &format!("user alice password {SHA512} groups admins"),
        ],
    )
    .unwrap();
    Env {
        backends: vec!["app".into(), "static".into(), "api".into()],
        userlists: vec![Arc::new(ul)],
        ..Env::default()
    }
}

fn section(acls: &[(&str, &str)], req: &[&str], res: &[&str]) -> SectionRules {
    let acls: Vec<(String, String)> = acls
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let req: Vec<String> = req.iter().map(|s| s.to_string()).collect();
    let res: Vec<String> = res.iter().map(|s| s.to_string()).collect();
    compile_section("fe", &acls, &[], None, &req, &res, &mut env())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

fn conn() -> Conn<'static> {
    Conn {
        client: "10.1.2.3:5555".parse().unwrap(),
        local: "192.168.0.1:80".parse().unwrap(),
        tls: None,
        backend: None,
        counters: &NoCounters,
    }
}

fn request(s: &SectionRules, raw: &str) -> (Verdict, String, Txn) {
    let mut txn = Txn::default();
    txn.req = Message::parse_request(raw.as_bytes()).expect("request");
    txn.begin();
    let mut out = Vec::new();
    let v = s.apply_request(&mut txn, &conn(), &mut out);
    (v, String::from_utf8(out).unwrap(), txn)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: ex.com\r\n\r\n")
}

fn head_text(m: &Message) -> String {
    let mut out = Vec::new();
    let mut h = crate::http::head::RequestHead::default();
    m.rebuild_request(&mut out, &mut h);
    String::from_utf8(out).unwrap()
}

#[test]
fn redirects_are_byte_exact_with_haproxy() {
    // Bytes captured from haproxy 2.6.12 with the same rules.
    let s = section(
        &[],
        &[
            "redirect location /new code 301 if { path /a }",
            "redirect prefix /pre code 302 if { path_beg /b }",
            "redirect prefix /pre drop-query append-slash code 307 if { path_beg /c }",
            "redirect scheme https code 308 if { path_beg /d }",
            "redirect scheme https code 303 if { path_beg /e }",
            "redirect prefix / drop-query if { path_beg /f }",
            "redirect location https://x.example/%[path] if { path_beg /g }",
        ],
        &[],
    );
    let cases = [
        ("/a?x=1", 301, "HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\nlocation: /new\r\n\r\n"),
        ("/b/c?x=1", 302, "HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: /pre/b/c?x=1\r\ncache-control: no-cache\r\n\r\n"),
        ("/c/z?x=1", 307, "HTTP/1.1 307 Temporary Redirect\r\ncontent-length: 0\r\nlocation: /pre/c/z/\r\ncache-control: no-cache\r\n\r\n"),
        ("/d/z?x=1", 308, "HTTP/1.1 308 Permanent Redirect\r\ncontent-length: 0\r\nlocation: https://ex.com/d/z?x=1\r\n\r\n"),
        ("/e", 303, "HTTP/1.1 303 See Other\r\ncontent-length: 0\r\nlocation: https://ex.com/e\r\ncache-control: no-cache\r\n\r\n"),
        ("/f/q?z", 302, "HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: /f/q\r\ncache-control: no-cache\r\n\r\n"),
        ("/g/h", 302, "HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: https://x.example//g/h\r\ncache-control: no-cache\r\n\r\n"),
    ];
    for (path, status, want) in cases {
        let (v, out, _) = request(&s, &get(path));
        assert_eq!(v, Verdict::Respond { status }, "{path}");
        assert_eq!(out, want, "{path}");
    }
    let (v, _, _) = request(&s, &get("/z"));
    assert_eq!(v, Verdict::Continue);
}

#[test]
fn deny_tarpit_return() {
    let s = section(
        &[("blocked", "path_beg /admin")],
        &[
            "deny deny_status 429 if { path /q }",
            "deny if blocked",
            "tarpit if { path /t }",
            "return status 200 content-type text/plain string hello if { path /r }",
            "return status 204 if { path /n }",
            "return status 503 content-type \"text/html; charset=utf-8\" string \"<b>down</b>\" hdr X-A 1 if { path /m }",
        ],
        &[],
    );
    let (v, out, _) = request(&s, &get("/q"));
    assert_eq!(v, Verdict::Respond { status: 429 });
    assert_eq!(out, "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 117\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n");
    let (v, out, _) = request(&s, &get("/admin/x"));
    assert_eq!(v, Verdict::Respond { status: 403 });
    assert_eq!(out, "HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n");
    let (v, out, _) = request(&s, &get("/t"));
    assert_eq!(v, Verdict::Tarpit { status: 500 });
    assert!(out.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    let (v, out, _) = request(&s, &get("/r"));
    assert_eq!(v, Verdict::Respond { status: 200 });
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello"
    );
    let (v, out, _) = request(&s, &get("/n"));
    assert_eq!(v, Verdict::Respond { status: 204 });
    assert_eq!(out, "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
    let (_, out, _) = request(&s, &get("/m"));
    assert_eq!(out, "HTTP/1.1 503 Service Unavailable\r\nx-a: 1\r\ncontent-length: 11\r\ncontent-type: text/html; charset=utf-8\r\n\r\n<b>down</b>");
}

#[test]
fn auth_with_realm_and_passwords() {
    let s = section(
        &[("ok", "http_auth(L)"), ("adm", "http_auth_group(L) admins")],
        &[
            "auth realm Secret if { path /auth } !ok",
            "auth if { path /adm } !adm",
            "return status 200 content-type text/plain string ok if { path /auth } || { path /adm }",
        ],
        &[],
    );
    let page = |realm: &str| {
        format!("HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nwww-authenticate: Basic realm=\"{realm}\"\r\n\r\n<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n")
    };
    let (v, out, _) = request(&s, &get("/auth"));
    assert_eq!(v, Verdict::Respond { status: 401 });
    assert_eq!(out, page("Secret"));
    let with = |path: &str, cred: &str| {
        let mut b = Vec::new();
        crate::http::acl::auth::base64_encode(cred.as_bytes(), &mut b);
        format!(
            "GET {path} HTTP/1.1\r\nHost: ex.com\r\nAuthorization: Basic {}\r\n\r\n",
            String::from_utf8(b).unwrap()
        )
    };
    // Insecure password.
    assert_eq!(
        request(&s, &with("/auth", "bob:secret")).0,
        Verdict::Respond { status: 200 }
    );
    assert_eq!(request(&s, &with("/auth", "bob:wrong")).1, page("Secret"));
    // SHA-512 crypt password.
    assert_eq!(
        request(&s, &with("/auth", "alice:secret")).0,
        Verdict::Respond { status: 200 }
    );
    assert_eq!(
        request(&s, &with("/auth", "alice:nope")).0,
        Verdict::Respond { status: 401 }
    );
    // Group: bob is not an admin; the realm defaults to the proxy name.
    assert_eq!(request(&s, &with("/adm", "bob:secret")).1, page("fe"));
    assert_eq!(
        request(&s, &with("/adm", "alice:secret")).0,
        Verdict::Respond { status: 200 }
    );
}

#[test]
fn header_and_uri_edits() {
    let s = section(
        &[],
        &[
            "set-header X-Client %[src]:%[src_port]",
            "add-header X-Host %[req.hdr(host),lower]",
            "add-header X-Host second",
            "del-header X-Drop",
            "set-header X-Lit \"a b\"",
            "replace-header User-Agent ^curl/(.*)$ curl-\\1",
            "replace-value X-List ^b$ B",
            "set-var(txn.tier) str(gold)",
            "set-header X-Tier %[var(txn.tier)]",
            "set-path /v2%[path] if { path_beg /api }",
            "set-query a=1",
            "set-method POST if { hdr(x-post) -m found }",
            "replace-path ^/v2/api/(.*) /new/\\1",
            "capture req.hdr(host) len 3",
            "set-log-level err",
        ],
        &[],
    );
    let (v, _, txn) = request(
        &s,
        "GET /api/x?q=1 HTTP/1.1\r\nHost: EX.com\r\nX-Drop: 1\r\nUser-Agent: curl/8.0\r\nX-List: a, b, c\r\nX-Post: y\r\n\r\n",
    );
    assert_eq!(v, Verdict::Continue);
    assert!(txn.req.edited());
    assert_eq!(
        head_text(&txn.req),
        "POST /new/x?a=1 HTTP/1.1\r\nHost: EX.com\r\nUser-Agent: curl-8.0\r\nX-List: a,B, c\r\nX-Post: y\r\nX-Client: 10.1.2.3:5555\r\nX-Host: ex.com\r\nX-Host: second\r\nX-Lit: a b\r\nX-Tier: gold\r\n\r\n"
    );
    assert_eq!(txn.captures, vec![b"EX.".to_vec()]);
    assert_eq!(txn.log_level, Some(3));
    // set-uri replaces the whole target; later rules see the new path.
    let s = section(&[], &["set-uri /other?z", "deny if { path /other }"], &[]);
    assert_eq!(request(&s, &get("/x")).0, Verdict::Respond { status: 403 });
    // allow stops the section's rules.
    let s = section(&[], &["allow if { path /ok }", "deny"], &[]);
    assert_eq!(request(&s, &get("/ok")).0, Verdict::Continue);
    assert_eq!(request(&s, &get("/no")).0, Verdict::Respond { status: 403 });
}

#[test]
fn response_rules() {
    let s = section(
        &[("err", "status ge 500")],
        &[],
        &[
            "set-header X-Served-By ringlb",
            "del-header Server",
            "replace-value Cache-Control ^public$ private",
            "set-status 503 reason \"Try Later\" if err",
            "add-header X-Code %[status]",
            "deny if { res.hdr(x-leak) -m found }",
        ],
    );
    let mut txn = Txn::default();
    txn.req = Message::parse_request(get("/p").as_bytes()).unwrap();
    txn.begin();
    txn.res = Message::parse_response(
        b"HTTP/1.1 500 Internal Server Error\r\nServer: nginx\r\nCache-Control: public, max-age=1\r\n\r\n",
    )
    .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        s.apply_response(&mut txn, &conn(), &mut out),
        Verdict::Continue
    );
    let mut o = Vec::new();
    let mut h = crate::http::head::ResponseHead::default();
    txn.res.rebuild_response(&mut o, &mut h);
    assert_eq!(
        String::from_utf8(o).unwrap(),
        "HTTP/1.1 503 Try Later\r\nCache-Control: private, max-age=1\r\nX-Served-By: ringlb\r\nX-Code: 503\r\n\r\n"
    );
    txn.res = Message::parse_response(b"HTTP/1.1 200 OK\r\nX-Leak: 1\r\n\r\n").unwrap();
    assert_eq!(
        s.apply_response(&mut txn, &conn(), &mut out),
        Verdict::Respond { status: 502 }
    );
    assert!(out.starts_with(b"HTTP/1.1 502 Bad Gateway\r\n"));
}

#[test]
fn routing_first_match_wins() {
    let acls: Vec<(String, String)> = vec![
        ("is_static".into(), "path_end .css .js".into()),
        ("is_api".into(), "path_beg /api/".into()),
    ];
    let ub = vec![
        (2, "is_api".to_string(), false),
        (
            1,
            "is_static || { hdr(host) -i static.example }".to_string(),
            false,
        ),
        (0, "is_api".to_string(), true),
    ];
    let s = compile_section("fe", &acls, &ub, Some(1), &[], &[], &mut env()).unwrap();
    let route = |raw: &str| {
        let mut txn = Txn::default();
        txn.req = Message::parse_request(raw.as_bytes()).unwrap();
        s.route(&mut txn, &conn())
    };
    assert_eq!(route(&get("/api/x.js")), Some(2));
    assert_eq!(route(&get("/a.css")), Some(1));
    assert_eq!(
        route("GET / HTTP/1.1\r\nHost: STATIC.example\r\n\r\n"),
        Some(1)
    );
    assert_eq!(route(&get("/home")), Some(0), "unless");
    let none: Vec<(usize, String, bool)> = vec![(2, "is_api".into(), false)];
    let s2 = compile_section("fe", &acls, &none, Some(1), &[], &[], &mut env()).unwrap();
    let mut txn = Txn::default();
    txn.req = Message::parse_request(get("/x").as_bytes()).unwrap();
    assert_eq!(s2.route(&mut txn, &conn()), Some(1), "default_backend");
}

#[test]
fn compile_errors_point_into_the_string() {
    let e = |acls: &[(&str, &str)], req: &[&str], res: &[&str]| {
        let acls: Vec<(String, String)> = acls
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let req: Vec<String> = req.iter().map(|s| s.to_string()).collect();
        let res: Vec<String> = res.iter().map(|s| s.to_string()).collect();
        compile_section("fe", &acls, &[], None, &req, &res, &mut env()).unwrap_err()
    };
    let (item, err) = e(&[], &["deny if nope"], &[]);
    assert_eq!(item, Item::Request(0));
    assert_eq!(err.at, 8);
    let (item, err) = e(&[], &["set-header X %[nope]"], &[]);
    assert_eq!((item, err.at), (Item::Request(0), 15));
    assert!(err.msg.contains("unknown fetch"));
    let (_, err) = e(&[], &["set-status 200"], &[]);
    assert!(
        err.msg.contains("not a valid http-request action"),
        "{err:?}"
    );
    let (item, err) = e(&[], &[], &["set-path /x"]);
    assert_eq!(item, Item::Response(0));
    assert!(err.msg.contains("not a valid http-response action"));
    let (_, err) = e(&[], &["redirect location /x code 304"], &[]);
    assert_eq!(err.at, 26);
    let (_, err) = e(&[], &["replace-header X ( y"], &[]);
    assert_eq!(err.at, 17);
    let (_, err) = e(&[], &["return status 200 string x"], &[]);
    assert!(err.msg.contains("content type"));
    let (_, err) = e(&[], &["frobnicate"], &[]);
    assert!(err.msg.contains("unknown"));
    let (_, err) = e(&[], &["deny if { status 200 }"], &[]);
    assert!(err.msg.contains("response"), "{err:?}");
    let (_, err) = e(&[("late", "status 500")], &["deny if late"], &[]);
    assert_eq!(err.at, 8);
    assert!(err.msg.contains("response"), "{err:?}");
    let (item, err) = e(&[("a", "path_reg ((")], &[], &[]);
    assert_eq!((item, err.at), (Item::Acl(0), 9));
    let (_, err) = e(&[], &["deny extra"], &[]);
    assert_eq!(err.at, 5);
}

fn spec(mode: &str) -> CookieSpec {
    CookieSpec {
        name: "SRV".into(),
        mode: mode.into(),
        indirect: false,
        nocache: false,
        postonly: false,
        preserve: false,
        httponly: false,
        secure: false,
        domain: None,
        maxidle: None,
        maxlife: None,
    }
}

const SERVERS: [ServerView; 2] = [
    ServerView {
        cookie: Some("s1"),
        usable: true,
    },
    ServerView {
        cookie: Some("s2"),
        usable: false,
    },
];

fn req_with(cookie: &str) -> Message {
    Message::parse_request(
        format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n").as_bytes(),
    )
    .unwrap()
}

fn res_text(m: &Message) -> String {
    let mut o = Vec::new();
    let mut h = crate::http::head::ResponseHead::default();
    m.rebuild_response(&mut o, &mut h);
    String::from_utf8(o).unwrap()
}

#[test]
fn cookie_insert_indirect_nocache() {
    let mut s = spec("insert");
    s.indirect = true;
    s.nocache = true;
    // First visit: no cookie → load-balanced; the response gets one.
    let mut req = Message::parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(on_request(&s, &mut req, &SERVERS, false), Stick::None);
    let mut res =
        Message::parse_response(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\n").unwrap();
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::None, b"GET");
    assert_eq!(
        res_text(&res),
        "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nSet-Cookie: SRV=s1; path=/\r\nCache-control: private\r\n\r\n"
    );
    // A response no cache would keep gets no Cache-control.
    let mut res = Message::parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::None, b"GET");
    assert_eq!(
        res_text(&res),
        "HTTP/1.1 200 OK\r\nSet-Cookie: SRV=s1; path=/\r\n\r\n"
    );
    // Next visit: sticks; indirect strips the cookie towards the server and
    // no cookie is inserted again.
    let mut req = req_with("a=1; SRV=s1; b=2");
    assert_eq!(on_request(&s, &mut req, &SERVERS, false), Stick::Server(0));
    assert_eq!(req.lines(b"cookie").collect::<Vec<_>>(), [b"a=1; b=2"]);
    let mut res = Message::parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    on_response(
        &s,
        &mut res,
        Some((0, Some("s1"))),
        Stick::Server(0),
        b"GET",
    );
    assert_eq!(res_text(&res), "HTTP/1.1 200 OK\r\n\r\n");
    // The only cookie: the whole line goes.
    let mut req = req_with("SRV=s1");
    on_request(&s, &mut req, &SERVERS, false);
    assert_eq!(req.lines(b"cookie").count(), 0);
}

#[test]
fn cookie_naming_a_down_server_is_load_balanced() {
    let s = spec("insert");
    let mut req = req_with("SRV=s2");
    assert_eq!(on_request(&s, &mut req, &SERVERS, false), Stick::Down(1));
    // Not indirect: the cookie goes on unchanged.
    assert_eq!(req.lines(b"cookie").collect::<Vec<_>>(), [b"SRV=s2"]);
    // The live server answers and re-sets the cookie to itself.
    let mut res = Message::parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::Down(1), b"GET");
    assert_eq!(
        res_text(&res),
        "HTTP/1.1 200 OK\r\nSet-Cookie: SRV=s1; path=/\r\n\r\n"
    );
    // option persist keeps the DOWN server.
    let mut req = req_with("SRV=s2");
    assert_eq!(on_request(&s, &mut req, &SERVERS, true), Stick::Server(1));
    // Unknown value.
    let mut req = req_with("SRV=zz");
    assert_eq!(on_request(&s, &mut req, &SERVERS, false), Stick::Invalid);
}

#[test]
fn cookie_preserve_postonly_attrs() {
    let mut s = spec("insert");
    s.preserve = true;
    s.httponly = true;
    s.secure = true;
    s.domain = Some(".example.com".into());
    let mut res =
        Message::parse_response(b"HTTP/1.1 200 OK\r\nSet-Cookie: SRV=mine; path=/app\r\n\r\n")
            .unwrap();
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::None, b"GET");
    assert_eq!(
        res_text(&res),
        "HTTP/1.1 200 OK\r\nSet-Cookie: SRV=mine; path=/app\r\n\r\n",
        "preserve: the server's cookie is kept and none inserted"
    );
    let mut res = Message::parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::None, b"GET");
    assert_eq!(
        res_text(&res),
        "HTTP/1.1 200 OK\r\nSet-Cookie: SRV=s1; path=/; domain=.example.com; HttpOnly; Secure\r\n\r\n"
    );
    let mut s = spec("insert");
    s.postonly = true;
    let mut res = Message::parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::None, b"GET");
    assert_eq!(res_text(&res), "HTTP/1.1 200 OK\r\n\r\n", "postonly, GET");
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::None, b"POST");
    assert!(res_text(&res).contains("Set-Cookie: SRV=s1; path=/"));
    // Insert mode (no preserve) drops the server's own cookie of that name.
    let s = spec("insert");
    let mut res = Message::parse_response(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: SRV=mine\r\nSet-Cookie: other=1\r\n\r\n",
    )
    .unwrap();
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::None, b"GET");
    assert_eq!(
        res_text(&res),
        "HTTP/1.1 200 OK\r\nSet-Cookie: other=1\r\nSet-Cookie: SRV=s1; path=/\r\n\r\n"
    );
    // A server without a cookie value: the client's cookie is cleared.
    let mut res = Message::parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    on_response(&s, &mut res, Some((1, None)), Stick::None, b"GET");
    assert!(
        res_text(&res).contains("Set-Cookie: SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/")
    );
}

#[test]
fn cookie_rewrite_and_prefix() {
    let mut s = spec("rewrite");
    s.nocache = true;
    let mut req = req_with("SRV=s1");
    assert_eq!(on_request(&s, &mut req, &SERVERS, false), Stick::Server(0));
    assert_eq!(req.lines(b"cookie").collect::<Vec<_>>(), [b"SRV=s1"]);
    let mut res =
        Message::parse_response(b"HTTP/1.1 200 OK\r\nSet-Cookie: SRV=session42; path=/\r\n\r\n")
            .unwrap();
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::None, b"GET");
    assert_eq!(
        res_text(&res),
        "HTTP/1.1 200 OK\r\nSet-Cookie: SRV=s1; path=/\r\n\r\n"
    );
    let s = spec("prefix");
    let mut res =
        Message::parse_response(b"HTTP/1.1 200 OK\r\nSet-Cookie: SRV=abc; HttpOnly\r\n\r\n")
            .unwrap();
    on_response(&s, &mut res, Some((0, Some("s1"))), Stick::None, b"GET");
    assert_eq!(
        res_text(&res),
        "HTTP/1.1 200 OK\r\nSet-Cookie: SRV=s1~abc; HttpOnly\r\n\r\n"
    );
    // The client sends the prefixed value back: stuck, prefix removed.
    let mut req = req_with("x=1; SRV=s1~abc");
    assert_eq!(on_request(&s, &mut req, &SERVERS, false), Stick::Server(0));
    assert_eq!(req.lines(b"cookie").collect::<Vec<_>>(), [b"x=1; SRV=abc"]);
}

#[test]
fn cacheability_as_haproxy_decides_it() {
    use super::cookie::cacheable;
    let r = |extra: &str| {
        Message::parse_response(format!("HTTP/1.1 200 OK\r\n{extra}\r\n").as_bytes()).unwrap()
    };
    assert!(cacheable(b"GET", &r("Cache-Control: max-age=60\r\n")));
    assert!(cacheable(b"HEAD", &r("Cache-Control: s-maxage=5\r\n")));
    assert!(cacheable(
        b"GET",
        &r("Expires: Thu, 01 Dec 2030 16:00:00 GMT\r\n")
    ));
    assert!(cacheable(b"GET", &r("ETag: \"x\"\r\n")));
    assert!(cacheable(
        b"GET",
        &r("Last-Modified: Thu, 01 Dec 2020 16:00:00 GMT\r\n")
    ));
    assert!(!cacheable(b"GET", &r("")));
    assert!(!cacheable(b"GET", &r("Cache-Control: public\r\n")));
    assert!(!cacheable(b"POST", &r("Cache-Control: max-age=60\r\n")));
    assert!(!cacheable(b"PUT", &r("Cache-Control: max-age=60\r\n")));
    assert!(!cacheable(
        b"GET",
        &r("Cache-Control: max-age=60, private\r\n")
    ));
    assert!(!cacheable(b"GET", &r("Pragma: no-cache\r\nExpires: x\r\n")));
    let found = Message::parse_response(b"HTTP/1.1 302 Found\r\nCache-Control: max-age=60\r\n\r\n")
        .unwrap();
    assert!(!cacheable(b"GET", &found));
    let gone =
        Message::parse_response(b"HTTP/1.1 404 Not Found\r\nCache-Control: max-age=60\r\n\r\n")
            .unwrap();
    assert!(cacheable(b"GET", &gone));
}

#[test]
fn request_fetches_are_refused_in_response_rules() {
    let compile = |acls: &[(&str, &str)], res: &[&str]| {
        let acls: Vec<(String, String)> = acls
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let res: Vec<String> = res.iter().map(|s| s.to_string()).collect();
        compile_section("fe", &acls, &[], None, &[], &res, &mut env())
    };
    let (item, e) = compile(&[], &["add-header X-Path %[path]"]).unwrap_err();
    assert_eq!((item, e.at), (Item::Response(0), 20));
    assert!(e.msg.contains("request headers"), "{e:?}");
    let (_, e) = compile(&[("api", "path_beg /api")], &["del-header Server if api"]).unwrap_err();
    assert_eq!(e.at, 21);
    let (_, e) = compile(&[], &["set-var(txn.x) req.hdr(host)"]).unwrap_err();
    assert_eq!(e.at, 15);
    // Response fetches, addresses and variables are fine.
    compile(
        &[("err", "status ge 500")],
        &["set-header X %[var(txn.p)]-%[src]-%[res.hdr(server)] if err"],
    )
    .unwrap();
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    /// Words rules are made of, so random strings reach deep into the parser.
    const WORDS: &[&str] = &[
        "if",
        "unless",
        "{",
        "}",
        "!",
        "||",
        "or",
        "path",
        "path_beg",
        "hdr(host)",
        "req.hdr(x,-1)",
        "-i",
        "-m",
        "reg",
        "beg",
        "int",
        "found",
        "-f",
        "--",
        "ge",
        "lt",
        "1",
        "0:9",
        "(",
        ")",
        "%[",
        "]",
        "%[path,lower,field(1,/)]",
        "\"",
        "'",
        "\\",
        "deny",
        "deny_status",
        "redirect",
        "location",
        "prefix",
        "scheme",
        "code",
        "301",
        "return",
        "status",
        "string",
        "lf-string",
        "content-type",
        "set-header",
        "X",
        "%[src]",
        "replace-header",
        "^(.*)$",
        "\\1",
        "set-var(txn.a)",
        "var(txn.a)",
        "auth",
        "realm",
        "url_param(q),regsub(a,b,g)",
        "map(/nonexistent)",
        "src",
        "10.0.0.0/8",
        "status",
        "res.hdr(x)",
        "capture",
        "len",
        "set-status",
        "reason",
        "%ci",
        "%%",
        "METH_GET",
        "nbsrv(app)",
        "nbsrv(nope)",
        "always_true",
    ];

    fn rule() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(proptest::sample::select(WORDS), 0..10)
                .prop_map(|w| w.join(" ")),
            "[ -~]{0,60}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn compiling_and_applying_any_rule_never_panics(a in rule(), r in rule(), side in any::<bool>()) {
            let mut env = env();
            let mut acls = crate::http::acl::AclSet::new();
            let _ = acls.define("x", &a, &mut env);
            let side = if side { Side::Request } else { Side::Response };
            if let Ok(rule) = compile_rule(&r, side, &mut acls, &mut env) {
                let s = SectionRules {
                    name: "fe".into(),
                    acls,
                    request: if side == Side::Request { vec![rule.clone()] } else { vec![] },
                    response: if side == Side::Response { vec![rule] } else { vec![] },
                    ..SectionRules::default()
                };
                let mut txn = Txn::default();
                txn.req = Message::parse_request(b"GET /a/b?q=1 HTTP/1.1\r\nHost: h\r\nX: a, b\r\n\r\n").unwrap();
                txn.res = Message::parse_response(b"HTTP/1.1 200 OK\r\nX: 1\r\n\r\n").unwrap();
                let mut out = Vec::new();
                let _ = s.apply_request(&mut txn, &conn(), &mut out);
                let _ = s.apply_response(&mut txn, &conn(), &mut out);
                let _ = s.route(&mut txn, &conn());
            }
        }
    }
}

#[test]
fn cookie_dates_with_maxidle_and_maxlife() {
    use super::cookie::{b64tos30, on_request_at, on_response_at, s30tob64, Dates};
    use std::time::Duration;
    let mut b = Vec::new();
    s30tob64(123_456_789, &mut b);
    assert_eq!(b.len(), 5);
    assert_eq!(b64tos30(&b), Some(123_456_789));
    assert_eq!(b64tos30(b"AB"), None);
    let mut s = spec("insert");
    s.maxidle = Some(Duration::from_secs(60));
    s.maxlife = Some(Duration::from_secs(3600));
    let now = 1_700_000_000u64;
    let enc = |t: u64| {
        let mut v = Vec::new();
        s30tob64(t >> 2, &mut v);
        String::from_utf8(v).unwrap()
    };
    // First response: SRV=s1|LAST|FIRST.
    let mut res = Message::parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    on_response_at(
        &s,
        &mut res,
        Some((0, Some("s1"))),
        Stick::None,
        Dates::default(),
        b"GET",
        Some(now),
    );
    let want = format!("SRV=s1|{}|{}; path=/", enc(now + 3), enc(now + 3));
    assert_eq!(res.lines(b"set-cookie").next().unwrap(), want.as_bytes());
    // Back 30 s later: sticks, and the cookie is refreshed (last date moves,
    // first date stays).
    let first = now;
    let cookie = |last: u64, first: u64| {
        Message::parse_request(
            format!(
                "GET / HTTP/1.1\r\nCookie: SRV=s1|{}|{}\r\n\r\n",
                enc(last),
                enc(first)
            )
            .as_bytes(),
        )
        .unwrap()
    };
    let later = now + 30;
    let mut req = cookie(now, first);
    let (stick, d) = on_request_at(&s, &mut req, &SERVERS, false, Some(later));
    assert_eq!(stick, Stick::Server(0));
    assert_eq!(d.last, now & !3);
    let mut res = Message::parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    on_response_at(
        &s,
        &mut res,
        Some((0, Some("s1"))),
        stick,
        d,
        b"GET",
        Some(later),
    );
    let want = format!("SRV=s1|{}|{}; path=/", enc(later + 3), enc(first));
    assert_eq!(res.lines(b"set-cookie").next().unwrap(), want.as_bytes());
    // Idle too long, too old, or dated more than a day ahead: no longer sticks.
    let mut req = cookie(now, first);
    assert_eq!(
        on_request_at(&s, &mut req, &SERVERS, false, Some(now + 120)).0,
        Stick::Expired
    );
    let mut req = cookie(now + 7000, first);
    assert_eq!(
        on_request_at(&s, &mut req, &SERVERS, false, Some(now + 7000)).0,
        Stick::Expired
    );
    let mut req = cookie(now + 90_000, first);
    assert_eq!(
        on_request_at(&s, &mut req, &SERVERS, false, Some(now)).0,
        Stick::Expired
    );
    // Without a clock, dates are ignored and the id still sticks.
    let mut req = cookie(now, first);
    assert_eq!(on_request(&s, &mut req, &SERVERS, false), Stick::Server(0));
}

#[test]
fn compiled_rules_are_shared_across_shards() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SectionRules>();
    send_sync::<crate::config::model::Config>();
    // A TCP frontend routes with an empty request: address fetches work,
    // HTTP fetches find nothing.
    let acls = vec![("lan".to_string(), "src 10.0.0.0/8".to_string())];
    let ub = vec![
        (1, "lan".to_string(), false),
        (2, "{ hdr(x) -m found }".to_string(), false),
    ];
    let s = compile_section("fe", &acls, &ub, Some(0), &[], &[], &mut env()).unwrap();
    let mut txn = Txn::default();
    assert_eq!(s.route(&mut txn, &conn()), Some(1));
    let other = Conn {
        client: "192.0.2.1:1".parse().unwrap(),
        ..conn()
    };
    assert_eq!(s.route(&mut txn, &other), Some(0));
}

#[test]
fn deny_status_needs_a_page() {
    let req: Vec<String> = vec!["deny deny_status 418".into()];
    let (_, e) = compile_section("fe", &[], &[], None, &req, &[], &mut env()).unwrap_err();
    assert_eq!(e.at, 17);
    assert!(e.msg.contains("no error page"), "{e:?}");
}
