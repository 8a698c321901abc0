//! HAProxy is the oracle for ACL matching: each ACL below is evaluated by a
//! real haproxy 2.6 and by ringlb's compiled `http::acl` on the same requests
//! (the `X-Acl: N` header picks which one answers), and the answers must agree.
//!
//! Needs `haproxy` (Debian package, installed by `.ci/run`).

mod support;

use ringlb::http::rules::Verdict;
use support::free_port;
use support::http::{exchange_until, Haproxy};
use support::oracle::{compile, conn, txn};
use support::servers::haproxy_defaults;

const ACLS: &[&str] = &[
    "path /api/v1/Items.json",
    "path -i /api/v1/items.json",
    "path_beg /api/ /static/",
    "path_beg -i /API/",
    "path_end .json",
    "path_end -i .JSON",
    "path_sub v1/",
    "path_reg ^/api/v[0-9]+/",
    "path_reg -i ^/API/",
    "path_dir v1",
    "path_dir items",
    "path_len 19",
    "path_len gt 10",
    "url_beg /api/v1/Items.json?id",
    "url_end id=9",
    "url_sub x=a",
    "url_param(id) 9",
    "url_param(id) 7",
    "url_param(x) -m found",
    "url_param(nope) -m found",
    "query -m found",
    "method GET",
    "method -i get",
    "method -i purge",
    "method purge",
    "method PURGE",
    "hdr(host) -i www.example.com",
    "hdr(host) www.example.com",
    "hdr_beg(host) -i www.",
    "hdr_end(host) .com",
    "hdr_dom(host) -i example.com",
    "hdr_dom(host) -i ample.com",
    "hdr_sub(x-list) b",
    "hdr(x-list) c",
    "hdr(x-list) d",
    "hdr_cnt(x-list) 4",
    "hdr_cnt(x-list) 5",
    "req.hdr(x-list,1) a",
    "req.hdr(x-list,2) b",
    "req.hdr(x-list,-1) d",
    "req.hdr(x-list,-1) c",
    "hdr_val(content-length) gt 2",
    "hdr_len(host) 15",
    "hdr(x-missing) -m found",
    "req.cook(SRV) s1",
    "req.cook(lang) -m beg f",
    "req.cook_cnt(SRV) 1",
    "req.cook_cnt 3",
    "src 127.0.0.0/8",
    "src 10.0.0.0/8",
    "src 127.0.0.1",
    "dst_port gt 1024",
    "ssl_fc",
    "ssl_fc 0",
    "ssl_fc 1",
    "always_true",
    "always_false",
    "HTTP_1.1",
    "HTTP_1.0",
    "METH_GET",
    "METH_POST",
    "HTTP_URL_SLASH",
    "HTTP_URL_ABS",
    "HTTP_CONTENT",
    "LOCALHOST",
    "hdr(host) -m reg ^www\\.",
    "hdr(host) -m sub EXAM",
    "hdr(host) -m sub -i EXAM",
    "path -m dir api",
    "path -m end json",
    "hdr(content-length) -m int ge 3",
    "hdr(content-length) -m int lt 3",
    "hdr(x-list) -m len 1",
    "req.hdr(host),lower www.example.com",
    "path,field(2,/) api",
    "path,word(2,/) v1",
    "hdr_dom(host) -i com",
    "hdr(host) -i www.example.com:8080",
    "hdr_cnt(host) 1",
    "hdr_cnt 9",
    "hdr_cnt 8",
    "be_name be",
    "url_param(id) -m len 0",
    "url_param(id) -m int gt 8",
    "query -m len 0",
    "req.cook(SRV) -m found",
    "req.cook(x) 2",
    "req.cook(lang) fr",
    "req.cook_cnt(lang) 1",
    "base www.example.com/api/v1/Items.json",
    "base -m beg www.Example.com/api",
    "req.ver 1.1",
    "dst 127.0.0.1",
    "hdr_val(content-length) 1:5",
    "hdr_val(content-length) 0:",
    "hdr(x-e) -m found",
    "hdr(x-e) -m len 0",
    "hdr_beg(cookie) SRV",
    "url *",
    "path *",
    "path_beg /api/v2",
    "url_beg http://",
    "hdr(x-list) -m str -i A",
    "path_reg ^/(api|static)/",
    "path_end -i .json .JSON .css",
    "hdr_sub(host) -i ExAmPlE",
];

const REQUESTS: &[&str] = &[
    "GET /api/v1/Items.json?id=7&x=a&id=9 HTTP/1.1\r\nHost: www.Example.com\r\nX-List: a, b,c\r\nX-List: d\r\nCookie: SRV=s1; lang=fr\r\nCookie: t=1\r\nContent-Length: 3\r\n\r\nabc",
    "POST /static/app.JSON HTTP/1.0\r\nHost: static.example.org\r\nContent-Length: 0\r\n\r\n",
    "GET http://www.example.com/api/v2/x HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
    "GET /? HTTP/1.1\r\nHost: other\r\nX-List: a\r\n\r\n",
    "PURGE /cache/x HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
    "GET /a?id=&x HTTP/1.1\r\nHost: www.example.com:8080\r\nX-E:\r\nCookie: SRV=s1, x=2\r\nCookie: lang = fr\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
];

fn config(port: u16) -> String {
    let defaults = haproxy_defaults("http", "1s", "2s");
    let mut c =
        format!("global\n    maxconn 100\n{defaults}frontend fe\n    bind 127.0.0.1:{port}\n");
    // Predefined ACLs (upper case) are used by name.
    let predefined = |a: &str| {
        a.chars()
            .all(|c| c.is_ascii_uppercase() || "_.0123456789".contains(c))
    };
    for (i, a) in ACLS.iter().enumerate() {
        if !predefined(a) {
            c.push_str(&format!("    acl a{i} {a}\n"));
        }
    }
    for (i, a) in ACLS.iter().enumerate() {
        let name = if predefined(a) {
            a.to_string()
        } else {
            format!("a{i}")
        };
        c.push_str(&format!(
            "    http-request return status 200 content-type text/plain string yes if {{ req.fhdr(x-acl) -m str {i} }} {name}\n"
        ));
    }
    c.push_str("    http-request return status 200 content-type text/plain string no\n");
    c.push_str("    default_backend be\nbackend be\n    server s 127.0.0.1:1\n");
    c
}

/// haproxy's answer to `raw`, read up to its `yes` or `no` body.
fn haproxy_says(port: u16, raw: &[u8]) -> Vec<u8> {
    exchange_until(port, raw, |out| {
        out.ends_with(b"yes") || out.ends_with(b"no")
    })
}

/// `raw` with an `X-Acl: i` header after the request line.
fn tagged(raw: &str, i: usize) -> String {
    let (line, rest) = raw.split_once("\r\n").unwrap();
    format!("{line}\r\nX-Acl: {i}\r\n{rest}")
}

#[test]
fn acl_matches_agree_with_haproxy() {
    let port = free_port();
    let text = config(port);
    let c = compile("acl.cfg", &text);
    let rules = c.frontends[0].rules.get().unwrap();
    let _h = Haproxy::start(&text, &[port]);
    let mut diffs = Vec::new();
    let mut yes = 0;
    for raw in REQUESTS {
        for (i, acl) in ACLS.iter().enumerate() {
            let req = tagged(raw, i);
            let theirs = haproxy_says(port, req.as_bytes());
            let mut txn = txn(req.as_bytes());
            let conn = conn(&format!("127.0.0.1:{port}"), None);
            let mut out = Vec::new();
            let v = rules.apply_request(&mut txn, &conn, &mut out);
            assert!(matches!(v, Verdict::Respond { .. }));
            if theirs.ends_with(b"yes") {
                yes += 1;
            }
            // The answer's body; the head's connection handling for HTTP/1.0
            // is the shard's business, not the rules'.
            let answer = |b: &[u8]| b.ends_with(b"yes");
            if answer(&theirs) != answer(&out)
                || !(theirs.ends_with(b"no") || theirs.ends_with(b"yes"))
            {
                diffs.push(format!(
                    "acl {acl:?} on {:?}: haproxy {:?}, ringlb {:?}",
                    raw.lines().next().unwrap_or(""),
                    String::from_utf8_lossy(&theirs)
                        .rsplit('\n')
                        .next()
                        .unwrap_or(""),
                    String::from_utf8_lossy(&out)
                        .rsplit('\n')
                        .next()
                        .unwrap_or("")
                ));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    assert!(yes > 40, "too few matches to mean anything: {yes}");
}
