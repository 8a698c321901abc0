//! The log line of one request the stats page served. HAProxy logs what its
//! stats applet answers like any other request (`stats stats/<STATS> … LR--`
//! with `option httplog`); this module turns the page's answer into the same
//! [`HttpRecord`] the data shards fill, which the control shard hands to the
//! same [`crate::log::Logger`], so the proxy's `log` targets, `no log`,
//! `option dontlognull`, `option httplog` and `log-format` apply as they do
//! to any frontend, and one formatter writes every line. No I/O; the caller
//! reads the clock and the connection gauges.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use crate::config::model::Config;
use crate::log::{HttpRecord, SessionRecord, Termination, PROMEX_APPLET, STATS_APPLET};

/// What the stats page did with a request, as its log line tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The page, its CSV or JSON, or a post's 303: the stats applet
    /// answered (`<STATS>`, `LR--`).
    Page,
    /// 401 for missing or wrong credentials. HAProxy 2.6 logs this one as
    /// status 400 with `Tr` -1 (its `stats auth` rule ends the request as
    /// an aborted one); ringlb's line says the same, so log tools count
    /// both proxies alike.
    Unauthorized,
    /// `/metrics`: HAProxy's `use-service prometheus-exporter` (`<PROMEX>`).
    Metrics,
    /// Any other URI on a stats-only proxy: no server, 503 (`SC--`).
    NoServer,
    /// A head that does not parse: 400 (`PR--`, `<BADREQ>`).
    BadRequest,
    /// The client closed before a complete head: nothing sent (`CR--`,
    /// status 400, `<BADREQ>`); `option dontlognull` drops it when the
    /// client sent nothing at all.
    Closed,
}

/// One stats connection's request, as measured by the caller.
pub struct Exchange<'a> {
    pub frontend: usize,
    pub client: SocketAddr,
    /// The accept date (`%tr` of a connection's only request).
    pub accepted: SystemTime,
    pub start: Instant,
    /// When the head was complete (`%TR`); `None`: never.
    pub head_done: Option<Instant>,
    /// What the client sent: head, and a post's form.
    pub request: &'a [u8],
    /// Bytes sent back (`%B`).
    pub sent: u64,
    /// `%ac` and `%fc` at the end of the request.
    pub actconn: u32,
    pub feconn: u32,
}

fn ms(from: Instant, to: Instant) -> i64 {
    to.saturating_duration_since(from).as_millis() as i64
}

/// The record of `x`, answered with `status` as `answer` says, finished `now`.
pub fn record(
    config: &Config,
    x: &Exchange,
    answer: Answer,
    status: u16,
    now: Instant,
) -> HttpRecord {
    let fe = &config.frontends[x.frontend];
    // (server, Tw, Tc, Tr, termination, logged status)
    let (server, tw, tc, tr, term, status) = match answer {
        Answer::Page => (
            Some(STATS_APPLET),
            0,
            0,
            0,
            Termination::LOCAL_REQUEST,
            status,
        ),
        Answer::Unauthorized => (
            Some(STATS_APPLET),
            0,
            0,
            -1,
            Termination::LOCAL_REQUEST,
            400,
        ),
        Answer::Metrics => (
            Some(PROMEX_APPLET),
            0,
            0,
            0,
            Termination::LOCAL_REQUEST,
            status,
        ),
        Answer::NoServer => (None, -1, -1, -1, Termination::NO_SERVER, status),
        Answer::BadRequest => (None, -1, -1, -1, Termination::PROXY_REQUEST, status),
        Answer::Closed => (None, -1, -1, -1, Termination::CLIENT_REQUEST_ABORT, 400),
    };
    let parsed = !matches!(answer, Answer::BadRequest | Answer::Closed);
    // A `listen` section's backend half, when it has one, names the 503's
    // backend (HAProxy: `stats/<NOSRV>`); otherwise the frontend's name shows.
    let backend = match answer {
        Answer::NoServer => config.backends.iter().position(|b| b.name == fe.name),
        _ => None,
    };
    let head = parsed.then(|| head_of(x.request));
    HttpRecord {
        session: SessionRecord {
            frontend: x.frontend,
            backend,
            server,
            client: x.client,
            accept_time: x.accepted,
            tw_ms: tw,
            tc_ms: tc,
            tt_ms: ms(x.start, now),
            bytes_up: x.request.len() as u64,
            bytes_down: x.sent,
            termination: term,
            retries: 0,
            redispatched: false,
            actconn: x.actconn,
            feconn: x.feconn,
            beconn: 0,
            srv_conn: 0,
            srv_queue: 0,
            backend_queue: 0,
            ssl: None,
        },
        request_time: x.accepted,
        tr_request_ms: match (parsed, x.head_done) {
            (true, Some(t)) => ms(x.start, t),
            _ => -1,
        },
        tr_response_ms: tr,
        ta_ms: ms(x.start, now),
        status,
        request_line: head.map(|h| Box::from(request_line(h))),
        request_captures: head.map_or_else(
            || vec![Box::default(); fe.request_captures.len()],
            |h| captures(h, &fe.request_captures),
        ),
        response_captures: vec![Box::default(); fe.response_captures.len()],
        persistence: *b"--",
        log_level: None,
        samples: Vec::new(),
    }
}

/// The head of a request (a post's form cut off).
fn head_of(request: &[u8]) -> &[u8] {
    let end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(request.len(), |i| i + 4);
    &request[..end]
}

/// `%r`: the request line without its line end.
fn request_line(head: &[u8]) -> &[u8] {
    let end = head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    &head[..end]
}

/// `capture request header NAME len N`, HAProxy's rules: the last
/// occurrence, cut to `len`, empty when absent.
fn captures(head: &[u8], caps: &[crate::http::capture::HeaderCapture]) -> Vec<Box<[u8]>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let _ = req.parse(head);
    caps.iter()
        .map(|c| {
            let v = req
                .headers
                .iter()
                .rev()
                .find(|h| h.name.eq_ignore_ascii_case(&c.name))
                .map_or(&b""[..], |h| h.value);
            Box::from(&v[..v.len().min(c.len)])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{httplog, Names};
    use std::time::{Duration, UNIX_EPOCH};

    fn config() -> Config {
        crate::config::parse_str(
            "[[listen]]\nname = \"stats\"\nbind = [\"127.0.0.1:1\"]\nstats = { uri = \"/s\" }\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    fn line(answer: Answer, status: u16, request: &[u8], done: bool) -> String {
        let cfg = config();
        let t0 = Instant::now();
        let x = Exchange {
            frontend: 0,
            client: "127.0.0.1:40000".parse().unwrap(),
            accepted: UNIX_EPOCH + Duration::from_millis(1_795_549_201_123),
            start: t0,
            head_done: done.then_some(t0),
            request,
            sent: 264,
            actconn: 1,
            feconn: 1,
        };
        let names = Names {
            frontends: vec!["stats".into()],
            backends: Vec::new(),
        };
        httplog(&record(&cfg, &x, answer, status, t0), &names)
    }

    #[test]
    fn answers_log_as_haproxys_stats_applet() {
        let get = b"GET /s;csv HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            line(Answer::Page, 200, get, true),
            "127.0.0.1:40000 [24/Nov/2026:19:40:01.123] stats stats/<STATS> 0/0/0/0/0 200 264 - - LR-- 1/1/0/0/0 0/0 \"GET /s;csv HTTP/1.1\""
        );
        assert!(line(Answer::Unauthorized, 401, get, true)
            .contains(" stats/<STATS> 0/0/0/-1/0 400 264 - - LR-- "));
        assert!(line(Answer::NoServer, 503, get, true)
            .contains(" stats/<NOSRV> 0/-1/-1/-1/0 503 264 - - SC-- "));
        assert!(line(Answer::Metrics, 200, get, true).contains(" stats/<PROMEX> 0/0/0/0/0 200 "));
        assert!(line(Answer::Closed, 0, b"", false)
            .contains(" stats/<NOSRV> -1/-1/-1/-1/0 400 264 - - CR-- 1/1/0/0/0 0/0 \"<BADREQ>\""));
    }
}
