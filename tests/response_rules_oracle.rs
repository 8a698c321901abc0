//! HAProxy is the oracle for `http-response` rules: the same rules run in a
//! real haproxy 2.6 in front of a server answering canned responses, and in
//! ringlb's `http::rules` on the same responses; the status line and the
//! header lines (names lower-cased, as haproxy writes them; framing headers
//! aside) must agree, and a `deny` must send the same bytes.
//!
//! Needs `haproxy` (Debian package, installed by `.ci/run`).

mod support;

use ringlb::http::acl::Message;
use ringlb::http::rules::Verdict;
use support::free_port;
use support::http::{haproxy_response, start_origin_by_path, Haproxy};
use support::oracle::{compile, conn, txn};
use support::servers::haproxy_defaults;

/// The canned response for a path.
fn reply(path: &str) -> String {
    let extra = match path {
        "/err" => "Server: nginx\r\nCache-Control: public\r\n",
        "/ok" => "Server: nginx\r\nCache-Control: public, max-age=5\r\nX-Ver: v1.2\r\n",
        "/odd" => "X-Odd: 1\r\nX-Ver: 2\r\n",
        "/leak" => "X-Leak: secret\r\n",
        _ => "",
    };
    let status = if path == "/err" {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\n\r\n")
}

/// Status line and header lines, names lower-cased, framing headers aside.
fn normal(head: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(head);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split("\r\n");
    let mut out = vec![lines.next().unwrap_or("").to_string()];
    for l in lines {
        let Some((n, v)) = l.split_once(':') else {
            continue;
        };
        let n = n.trim().to_ascii_lowercase();
        if n == "content-length" || n == "connection" {
            continue;
        }
        out.push(format!("{n}: {}", v.trim()));
    }
    out
}

#[test]
fn response_rules_match_haproxy() {
    let port = free_port();
    let o = start_origin_by_path(reply);
    let defaults = haproxy_defaults("http", "1s", "2s");
    let text = format!(
        r#"{defaults}
frontend fe
    bind 127.0.0.1:{port}
    http-request set-var(txn.path) path
    http-response set-header X-Fe fe-%[status]
    default_backend be

backend be
    acl err status ge 500
    http-response set-header X-Served-By ringlb
    http-response del-header Server
    http-response replace-value Cache-Control ^public$ private
    http-response replace-header X-Ver ^v(.*)$ version-\1
    http-response add-header X-Path %[var(txn.path)]
    http-response set-status 503 reason "Try Later" if err
    http-response set-status 299 if {{ res.hdr(x-odd) -m found }}
    http-response deny if {{ res.hdr(x-leak) -m found }}
    http-response add-header X-Status %[status]
    server s 127.0.0.1:{o}
"#
    );
    let c = compile("r.cfg", &text);
    let _h = Haproxy::start(&text, &[port]);
    let fe = c.frontends[0].rules.get().expect("frontend rules");
    let be = c.backends[0].rules.get().expect("backend rules");
    let mut diffs = Vec::new();
    for path in ["/err", "/ok", "/odd", "/leak", "/plain"] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let theirs = haproxy_response(port, raw.as_bytes());
        let mut txn = txn(raw.as_bytes());
        txn.res = Message::parse_response(reply(path).as_bytes()).unwrap();
        let conn = conn("127.0.0.1:80", Some(0));
        let mut out = Vec::new();
        assert_eq!(
            fe.apply_request(&mut txn, &conn, &mut out),
            Verdict::Continue
        );
        let mut v = be.apply_response(&mut txn, &conn, &mut out);
        if v == Verdict::Continue {
            v = fe.apply_response(&mut txn, &conn, &mut out);
        }
        let ours = if v == Verdict::Continue {
            let mut o = Vec::new();
            let mut h = ringlb::http::head::ResponseHead::default();
            txn.res.rebuild_response(&mut o, &mut h);
            normal(&o)
        } else {
            if out != theirs {
                diffs.push(format!(
                    "{path}: deny\n  haproxy: {:?}\n  ringlb:  {:?}",
                    String::from_utf8_lossy(&theirs),
                    String::from_utf8_lossy(&out)
                ));
            }
            normal(&out)
        };
        let want = normal(&theirs);
        if want != ours {
            diffs.push(format!("{path}\n  haproxy: {want:?}\n  ringlb:  {ours:?}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
