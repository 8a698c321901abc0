//! The two halves of an oracle test (HAProxy is the oracle): one haproxy.cfg
//! text that the installed haproxy runs (from `servers::haproxy_defaults`
//! ("http", "1s", "2s"): short timeouts, so a case that hangs fails fast) and ringlb's config loader compiles,
//! and ringlb's rules engine fed a request as a shard would feed it, without
//! sockets. The haproxy half's client is `http::haproxy_response`.

use std::path::PathBuf;

use ringlb::config::model::Config;
use ringlb::http::acl::{Message, NoCounters};
use ringlb::http::rules::{Conn, Txn};

/// Every status `deny_status` takes that both haproxy and ringlb answer with
/// their built-in error page.
pub const DENY_STATUSES: [u16; 18] = [
    400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500, 501, 502, 503, 504,
];

/// `GET /deny/STATUS` for each of [`DENY_STATUSES`] (a config maps each path
/// to its `deny_status`).
pub fn deny_requests() -> Vec<Vec<u8>> {
    DENY_STATUSES
        .iter()
        .map(|st| format!("GET /deny/{st} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes())
        .collect()
}

/// `text` compiled by ringlb's haproxy.cfg loader (strict; panics with the
/// loader's message), as if read from a file called `name`.
pub fn compile(name: &str, text: &str) -> Config {
    ringlb::config::parse_haproxy(&[(PathBuf::from(name), text.to_string())], false, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

/// A transaction that has just received `raw` (a whole request head).
pub fn txn(raw: &[u8]) -> Txn {
    let mut txn = Txn::default();
    txn.req = Message::parse_request(raw).expect("request parses");
    txn.begin();
    txn
}

/// A plain-TCP client connection from 127.0.0.1:40000 to `local`, with no
/// counters, routed to `backend` so far.
pub fn conn(local: &str, backend: Option<usize>) -> Conn<'static> {
    Conn {
        client: "127.0.0.1:40000".parse().unwrap(),
        local: local.parse().unwrap(),
        tls: None,
        backend,
        counters: &NoCounters,
    }
}
