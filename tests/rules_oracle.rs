//! HAProxy is the oracle for rules: one haproxy.cfg (ACLs, `use_backend`,
//! `http-request` redirects, returns, denies, auth and header/URI edits made
//! visible with `return ... lf-string`) runs in a real haproxy 2.6 and is
//! compiled by ringlb's config loader; every request's whole response must be
//! byte-for-byte the same.
//!
//! Needs `haproxy` (Debian package, installed by `.ci/run`).

mod support;

use ringlb::http::rules::Verdict;
use support::free_port;
use support::http::{haproxy_response, Haproxy};
use support::oracle::{compile, conn, deny_requests, txn};
use support::servers::haproxy_defaults;

const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

fn config(port: u16) -> String {
    let defaults = haproxy_defaults("http", "1s", "2s");
    format!(
        r#"global
    maxconn 100

{defaults}
userlist L
    group admins
    user bob insecure-password secret
    user alice password {SHA512} groups admins

frontend fe
    bind 127.0.0.1:{port}
    acl is_api path_beg -i /api/
    acl is_static path_end .css .js
    acl is_static hdr_beg(host) -i static.
    acl authed http_auth(L)
    http-request redirect location /new code 301 if {{ path /a }}
    http-request redirect prefix /pre code 302 if {{ path_beg /b/ }}
    http-request redirect prefix /pre drop-query append-slash code 307 if {{ path_beg /c/ }}
    http-request redirect scheme https code 308 if {{ path_beg /d/ }}
    http-request redirect scheme https drop-query code 303 if {{ path_beg /e/ }}
    http-request redirect location https://x.example%[path]?h=%[req.hdr(host),lower] if {{ path_beg /f/ }}
    http-request redirect location /seen code 302 set-cookie SEEN=1 if {{ path /sc }}
    http-request redirect prefix /x code 301 clear-cookie SEEN if {{ path /cc }}
    http-request deny deny_status 429 if {{ path /q }}
    http-request deny if {{ path_beg /admin }} !{{ src 10.0.0.0/8 }}
    http-request deny deny_status 404 if {{ url_param(id) -m int gt 100 }}
    http-request auth realm Secret if {{ path_beg /private }} !authed
    http-request auth if {{ path_beg /group }} !{{ http_auth_group(L) admins }}
    http-request return status 200 content-type text/plain string ok if {{ path_beg /private }} || {{ path_beg /group }}
    http-request set-header X-Client %[src]
    http-request add-header X-Host %[req.hdr(host),upper]
    http-request del-header X-Drop
    http-request replace-header User-Agent ^curl/(.*)$ agent-\1
    http-request set-var(txn.route) str(edited) if {{ path_beg /edit }}
    http-request set-path /v2%[path] if {{ path_beg /edit }}
    http-request replace-value X-List ^b$ B-%[var(txn.route)] if {{ path_beg /v2/edit }}
    http-request set-query a=1&b=2 if {{ path_beg /v2/edit }}
    http-request set-method PUT if {{ hdr(x-put) -m found }}
    http-request return status 203 content-type text/plain lf-string "%[method] %[url] %[req.hdr(x-client)] %[req.hdr(x-host)] [%[req.hdr(x-drop)]] %[req.hdr(user-agent)] %[var(txn.route)] <%[req.fhdr(x-list)]>" if {{ path_beg /v2/ }}
    use_backend api if is_api
    use_backend static if is_static || METH_POST
    default_backend web

backend web
    http-request return status 200 content-type text/plain string web
    server s 127.0.0.1:1

backend api
    http-request return status 201 content-type application/json string "{{\"be\":\"api\"}}" hdr X-Be api
    server s 127.0.0.1:1

backend static
    http-request return status 200 content-type text/css lf-string "static %[path]"
    server s 127.0.0.1:1
"#
    )
}

/// What ringlb answers: the frontend's rules, routing, the backend's rules.
fn ringlb_response(c: &ringlb::config::model::Config, raw: &[u8]) -> Vec<u8> {
    let fe = c.frontends[0].rules.get().expect("frontend rules");
    let mut txn = txn(raw);
    let mut conn = conn("127.0.0.1:80", None);
    let mut out = Vec::new();
    if let Verdict::Respond { .. } = fe.apply_request(&mut txn, &conn, &mut out) {
        return out;
    }
    let be = fe.route(&mut txn, &conn).expect("a backend");
    conn.backend = Some(be);
    let rules = c.backends[be].rules.get().expect("backend rules");
    match rules.apply_request(&mut txn, &conn, &mut out) {
        Verdict::Respond { .. } => out,
        v => panic!("no response: {v:?}"),
    }
}

fn req(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: www.example\r\n{extra}\r\n").into_bytes()
}

fn basic(cred: &str) -> String {
    let mut b = Vec::new();
    ringlb::http::acl::auth::base64_encode(cred.as_bytes(), &mut b);
    format!("Authorization: Basic {}\r\n", String::from_utf8(b).unwrap())
}

#[test]
fn rule_responses_match_haproxy_byte_for_byte() {
    let port = free_port();
    let text = config(port);
    let c = compile("oracle.cfg", &text);
    let _h = Haproxy::start(&text, &[port]);
    let cases: Vec<Vec<u8>> = vec![
        req("/a?x=1", ""),
        req("/b/c?x=1", ""),
        req("/c/z?x=1", ""),
        req("/c/z/", ""),
        req("/d/z?x=1", ""),
        req("/e/z?x=1", ""),
        req("/f/Q", "Host: WWW.Example\r\n"),
        req("/sc", ""),
        req("/cc?z", ""),
        req("/q", ""),
        req("/admin/x", ""),
        req("/x?id=7", ""),
        req("/x?id=101", ""),
        req("/private", ""),
        req("/private", &basic("bob:secret")),
        req("/private", &basic("bob:wrong")),
        req("/private", &basic("alice:secret")),
        req("/private", &basic("alice:secreT")),
        req("/group", &basic("bob:secret")),
        req("/group", &basic("alice:secret")),
        req("/API/v1", ""),
        req("/home", ""),
        req("/a.css", ""),
        b"GET / HTTP/1.1\r\nHost: static.example\r\n\r\n".to_vec(),
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec(),
        req(
            "/edit/x?q=9",
            "X-Drop: 1\r\nUser-Agent: curl/8.1\r\nX-Put: y\r\nX-List: a,b , b\r\n",
        ),
        req("/v2/plain", "User-Agent: other\r\n"),
    ];
    let mut cases = cases;
    cases.extend(deny_requests());
    let mut diffs = Vec::new();
    for raw in &cases {
        let theirs = haproxy_response(port, raw);
        let ours = ringlb_response(&c, raw);
        if theirs != ours {
            diffs.push(format!(
                "{}\n  haproxy: {:?}\n  ringlb:  {:?}",
                String::from_utf8_lossy(raw).lines().next().unwrap_or(""),
                String::from_utf8_lossy(&theirs),
                String::from_utf8_lossy(&ours)
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// Fetches and converters in log-format values, and the less common rule
/// forms, shown in a `return ... lf-string` body and compared with haproxy.
#[test]
fn log_format_values_match_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("hosts.map");
    std::fs::write(
        &map,
        "# host map\nwww.example.com site-a\nstatic.example.com site-b\n",
    )
    .unwrap();
    let page = dir.path().join("page.txt");
    std::fs::write(&page, "from a file\n").unwrap();
    let port = free_port();
    let defaults = haproxy_defaults("http", "1s", "2s");
    let text = format!(
        r#"{defaults}
frontend fe
    bind 127.0.0.1:{port}
    http-request deny deny_status 200 if {{ path /deny/200 }}
    http-request deny deny_status 400 if {{ path /deny/400 }}
    http-request deny deny_status 401 if {{ path /deny/401 }}
    http-request deny deny_status 403 if {{ path /deny/403 }}
    http-request deny deny_status 404 if {{ path /deny/404 }}
    http-request deny deny_status 405 if {{ path /deny/405 }}
    http-request deny deny_status 407 if {{ path /deny/407 }}
    http-request deny deny_status 408 if {{ path /deny/408 }}
    http-request deny deny_status 410 if {{ path /deny/410 }}
    http-request deny deny_status 413 if {{ path /deny/413 }}
    http-request deny deny_status 421 if {{ path /deny/421 }}
    http-request deny deny_status 422 if {{ path /deny/422 }}
    http-request deny deny_status 425 if {{ path /deny/425 }}
    http-request deny deny_status 429 if {{ path /deny/429 }}
    http-request deny deny_status 500 if {{ path /deny/500 }}
    http-request deny deny_status 501 if {{ path /deny/501 }}
    http-request deny deny_status 502 if {{ path /deny/502 }}
    http-request deny deny_status 503 if {{ path /deny/503 }}
    http-request deny deny_status 504 if {{ path /deny/504 }}
    timeout tarpit 200ms
    http-request tarpit deny_status 403 if {{ path /tarpit }}
    http-request tarpit if {{ path /tarpit500 }}
    http-request auth realm "My Realm" if {{ path /realm }}
    http-request return status 200 content-type text/plain file {page} if {{ path /file }}
    http-request redirect scheme https if {{ path /nohost }}
    http-request redirect code 301 drop-query location /moved if {{ path /order }}
    http-request set-path /conv2 if {{ path /conv }}
    http-request return status 200 content-type text/plain lf-string "dec=%[query,url_dec] form=%[query,url_dec(1)] bytes=%[path,bytes(1,3)] tail=%[path,bytes(2)] mask=%[src,ipmask(24)] date=%[int(1700000000),http_date] d2=%[int(0),http_date(86400)] cap=%[capture.req.uri] url=%[url] cm=%[capture.req.method]" if {{ path /conv2 }}
    http-request set-var(txn.host) req.hdr(host),lower
    http-request set-header X-Map %[req.hdr(host),lower,map({map},unknown)]
    http-request add-header X-Pct 100%%
    http-request del-header x-DROP
    http-request set-query id=%[url_param(id)]&n=%[req.hdr_cnt(x-n)] if {{ path /q }}
    http-request set-path /p%[path] if {{ path /set }}
    http-request set-uri /u?%[query] if {{ path /uri }}
    http-request return status 200 content-type text/plain lf-string "m=%[method] v=%[req.ver] url=%[url] q=%[query] id=%[url_param(id)] c=%[req.cook(SRV)] n=%[req.hdr_cnt(x-n)] miss=[%[req.hdr(x-missing)]] var=%[var(txn.host)] map=%[req.hdr(x-map)] pct=%[req.hdr(x-pct)] drop=[%[req.hdr(x-drop)]] up=%[req.hdr(host),upper] b64=%[req.hdr(host),base64] hex=%[req.cook(SRV),hex] f=%[req.hdr(host),field(2,.)] w=%[path,word(-1,/)] rs=%[path,regsub(/,_,g)] len=%[req.hdr(host),length] src=%[src] dp=%[dst_port]"
    default_backend be

backend be
    server s 127.0.0.1:1
"#,
        page = page.display(),
        map = map.display()
    );
    let c = compile("lf.cfg", &text);
    let _h = Haproxy::start(&text, &[port]);
    let fe = c.frontends[0].rules.get().unwrap();
    let cases: Vec<Vec<u8>> = vec![
        b"GET /deny/200 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /realm HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /order?q HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /conv?a=%41%2Bb+c&z=%7e HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /tarpit HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /tarpit500 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /nohost?a=1 HTTP/1.0\r\n\r\n".to_vec(),
        b"GET /q?id=42&z HTTP/1.1\r\nHost: WWW.Example.com\r\nX-N: 1, 2\r\nX-N: 3\r\nX-Drop: yes\r\nCookie: SRV=s1; a=b\r\n\r\n".to_vec(),
        b"GET /set?k=v HTTP/1.1\r\nHost: static.example.com\r\n\r\n".to_vec(),
        b"POST /uri?k=v HTTP/1.1\r\nHost: other.example.com\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"GET http://www.example.com/a/b/c HTTP/1.1\r\nHost: www.example.com\r\n\r\n".to_vec(),
    ];
    let mut cases = cases;
    cases.extend(deny_requests());
    let mut diffs = Vec::new();
    for raw in &cases {
        let theirs = haproxy_response(port, raw);
        let mut txn = txn(raw);
        let conn = conn(&format!("127.0.0.1:{port}"), None);
        let mut out = Vec::new();
        let v = fe.apply_request(&mut txn, &conn, &mut out);
        assert!(
            matches!(v, Verdict::Respond { .. } | Verdict::Tarpit { .. }),
            "{v:?}"
        );
        // HTTP/1.0 answers differ in connection handling, the shard's part.
        let http10 = raw.windows(8).any(|w| w == b"HTTP/1.0");
        let norm = |b: &[u8]| {
            let t = String::from_utf8_lossy(b).replace("HTTP/1.0", "HTTP/1.1");
            if http10 {
                t.replace("connection: close\r\n", "")
            } else {
                t
            }
        };
        if norm(&theirs) != norm(&out) {
            diffs.push(format!(
                "{}\n  haproxy: {:?}\n  ringlb:  {:?}",
                String::from_utf8_lossy(raw).lines().next().unwrap_or(""),
                norm(&theirs),
                norm(&out)
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
