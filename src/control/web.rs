//! The stats page, served by the control shard (no data-shard cost) on the binds
//! of every frontend or listen section with `stats`: the HTML page at
//! `stats uri`, HAProxy 2.6's CSV at `<uri>;csv` (and `;csv;norefresh`), Basic
//! authentication with `stats auth` (401 with `WWW-Authenticate: Basic
//! realm="…"` otherwise), `stats refresh`, `stats hide-version`, and with
//! `stats admin if COND` the admin form's posts (`page_admin`). Any other URI
//! gets HAProxy's 503, as a stats-only `listen` does, except `/metrics`: the
//! Prometheus exporter (HAProxy's `use-service prometheus-exporter`). One request per
//! connection (`Connection: close`). Each request is logged as HAProxy logs its
//! stats applet's (`web_log`), and counted in the frontend's `scur`/`stot`.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::ops::Ops;
use super::page_admin::{self, AdminRule, PostStatus};
use super::stats;
use super::web_log::{self, Answer, Exchange};
use super::Table;
use crate::config::model::{Config, StatsSpec};
use crate::log::Logger;
use crate::state::{LatencyBook, ShardMsg, Shared};

/// Asks every shard to publish its latency histograms and waits (at most
/// 200 ms) until each has, then merges them. Only a stats reader pays this;
/// idle shards are woken once, by this request.
pub async fn fresh_latency(config: &Config, shared: &Shared) -> LatencyBook {
    use std::sync::atomic::Ordering;
    let before: Vec<u64> = shared
        .latency
        .published
        .iter()
        .map(|p| p.load(Ordering::Acquire))
        .collect();
    for inbox in &shared.inboxes {
        inbox.send(ShardMsg::Publish);
    }
    for _ in 0..200 {
        let done = shared
            .latency
            .published
            .iter()
            .zip(&before)
            .all(|(p, b)| p.load(Ordering::Acquire) > *b);
        if done {
            break;
        }
        super::timers::sleep(Duration::from_millis(1)).await;
    }
    shared.latency.merged(config)
}

/// Binds every bind of every stats frontend (inside the control executor).
pub fn bind(config: &Config) -> std::io::Result<Vec<(usize, TcpListener)>> {
    let mut out = Vec::new();
    for (fi, fe) in config.frontends.iter().enumerate() {
        if fe.disabled || fe.stats.is_none() {
            continue;
        }
        for b in &fe.binds {
            let l = TcpListener::bind(b.addr).map_err(|e| {
                std::io::Error::other(format!(
                    "frontend \"{}\": cannot bind {} for the stats page: {e}",
                    fe.name, b.addr
                ))
            })?;
            out.push((fi, l));
        }
    }
    Ok(out)
}

pub struct Web {
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
    pub table: Table,
    pub logger: Logger,
    pub frontend: usize,
    /// `stats admin if COND`, compiled.
    pub admin: Option<AdminRule>,
}

/// The biggest admin form body read (HAProxy's is bounded by its buffer).
const MAX_FORM: usize = 16 << 10;

impl Web {
    pub async fn serve(self, l: TcpListener) {
        let me = Rc::new(self);
        loop {
            let Ok(conn) = l.accept().await else { continue };
            let me = me.clone();
            glommio::spawn_local(async move { me.conn(conn).await }).detach();
        }
    }

    async fn conn(&self, mut c: TcpStream) {
        let accepted = std::time::SystemTime::now();
        let start = std::time::Instant::now();
        let _place = Place::take(&self.shared, self.frontend);
        let fe = &self.config.frontends[self.frontend];
        let limit = fe
            .timeouts
            .http_request
            .or(fe.timeouts.client)
            .unwrap_or(Duration::from_secs(10));
        let unknown = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let peers = (
            c.peer_addr().unwrap_or(unknown),
            c.local_addr().unwrap_or(unknown),
        );
        let mut got = Vec::with_capacity(1024);
        let head =
            futures_lite::future::or(async { Some(read_head(&mut c, &mut got).await) }, async {
                super::timers::sleep(limit).await;
                None
            })
            .await;
        match head {
            Some(Head::Complete) => {}
            // HAProxy logs a client that left before a complete head (`CR--`).
            // A timeout (HAProxy: `cR--`, 408) or an oversized head (`PR--`)
            // is not logged yet: this page answers neither.
            Some(Head::Closed) => {
                return self.log(peers.0, accepted, start, None, &got, 0, Answer::Closed, 0);
            }
            Some(Head::TooLong) | None => return,
        }
        let head_done = std::time::Instant::now();
        // A POST's form follows its head (Content-Length; chunked is refused).
        if let Some(want) = form_length(&got) {
            let body = futures_lite::future::or(read_to(&mut c, &mut got, want), async {
                super::timers::sleep(limit).await;
                false
            });
            if !body.await {
                return;
            }
        }
        let latency = fresh_latency(&self.config, &self.shared).await;
        let (resp, answer) = self.respond(&got, &latency, peers);
        let sent = match c.write_all(&resp).await {
            Ok(()) => resp.len() as u64,
            Err(_) => 0,
        };
        let _ = c.flush().await;
        let _ = c.shutdown(std::net::Shutdown::Write).await;
        let status = status_of(&resp);
        self.log(
            peers.0,
            accepted,
            start,
            Some(head_done),
            &got,
            sent,
            answer,
            status,
        );
    }

    /// Queues the request's log line (the logger decides whether the
    /// frontend logs it at all).
    #[allow(clippy::too_many_arguments)]
    fn log(
        &self,
        client: std::net::SocketAddr,
        accepted: std::time::SystemTime,
        start: std::time::Instant,
        head_done: Option<std::time::Instant>,
        request: &[u8],
        sent: u64,
        answer: Answer,
        status: u16,
    ) {
        if !self.logger.logs_frontend(self.frontend) {
            return;
        }
        let fs = &self.shared.frontends;
        // Data shards count their sessions in `actconn`; stats connections
        // are only in their own frontend's gauge (they stay out of
        // `maxconn`'s accounting), so HAProxy's `%ac` adds them here.
        let stats_conns: u32 = self
            .config
            .frontends
            .iter()
            .zip(fs)
            .filter(|(f, _)| f.stats.is_some())
            .map(|(_, s)| s.active.get())
            .sum();
        let x = Exchange {
            frontend: self.frontend,
            client,
            accepted,
            start,
            head_done,
            request,
            sent,
            actconn: self.shared.actconn.get() + stats_conns,
            feconn: fs[self.frontend].active.get(),
        };
        let now = std::time::Instant::now();
        self.logger
            .http(web_log::record(&self.config, &x, answer, status, now));
    }

    /// The whole response to one request (head, and a POST's form);
    /// `peers`: (client, local) addresses, for `stats admin if COND`.
    /// Also says which answer it was, for the log line.
    pub fn respond(
        &self,
        head: &[u8],
        latency: &LatencyBook,
        peers: (std::net::SocketAddr, std::net::SocketAddr),
    ) -> (Vec<u8>, Answer) {
        let spec = self.config.frontends[self.frontend]
            .stats
            .as_ref()
            .expect("served only for stats frontends");
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head_len)) = req.parse(head) else {
            let resp = crate::http::errors::error_response(400)
                .unwrap_or(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
            return (resp.to_vec(), Answer::BadRequest);
        };
        let target = req.path.unwrap_or("/");
        if target == "/metrics" && spec.uri != "/metrics" {
            // HAProxy: `http-request use-service prometheus-exporter if { path /metrics }`.
            let table = self.table.borrow();
            let rows = stats::rows(&self.config, &self.shared, &table, Some(latency));
            let extra = [
                (
                    "ringlb_shards",
                    "gauge",
                    "Data shards running (one io_uring ring each).",
                    self.shared.inboxes.len() as f64,
                ),
                (
                    "ringlb_local_exhaustion_total",
                    "counter",
                    "Times a shard ran out of fds, memory or source ports (accept or connect).",
                    self.shared
                        .local_exhaustion
                        .load(std::sync::atomic::Ordering::Relaxed) as f64,
                ),
            ];
            let body = stats::metrics(&rows, &extra) + &stats::activity_metrics(&self.shared);
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: close\r\n\
                 Content-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(body.as_bytes());
            return (out, Answer::Metrics);
        }
        let Some(opts) = target.strip_prefix(spec.uri.as_str()) else {
            let resp = crate::http::errors::error_response(503)
                .unwrap_or(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n");
            return (resp.to_vec(), Answer::NoServer);
        };
        let auth = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("authorization"))
            .map(|h| h.value);
        if !authorized(spec, auth) {
            let realm = spec.realm.as_deref().unwrap_or("HAProxy Statistics");
            let body = "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n";
            let resp = format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-length: {}\r\nCache-Control: no-cache\r\n\
                 Connection: close\r\nContent-Type: text/html\r\nWWW-Authenticate: Basic realm=\"{realm}\"\r\n\r\n{body}",
                body.len()
            );
            return (resp.into_bytes(), Answer::Unauthorized);
        }
        let flags: Vec<&str> = opts.split(';').filter(|s| !s.is_empty()).collect();
        // The page's own links keep its `;up`, and `;norefresh` when there
        // is a refresh to turn off (HAProxy ignores it otherwise).
        let norefresh = spec.refresh.is_some() && flags.contains(&"norefresh");
        let page_uri = format!(
            "{}{}{}",
            spec.uri,
            if flags.contains(&"up") { ";up" } else { "" },
            if norefresh { ";norefresh" } else { "" }
        );
        let admin = self
            .admin
            .as_ref()
            .is_some_and(|r| r.allows(&head[..head_len], peers.0, peers.1));
        match req.method {
            Some("GET") | Some("HEAD") => {}
            Some("POST") => {
                let chunked = req
                    .headers
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
                let st = if !admin {
                    PostStatus::Deny
                } else if chunked {
                    PostStatus::Ival
                } else if head.len() - head_len > MAX_FORM {
                    PostStatus::Excd
                } else {
                    let ops = Ops {
                        config: &self.config,
                        shared: &self.shared,
                        table: &self.table,
                        logger: &self.logger,
                    };
                    page_admin::apply(&ops, &page_admin::parse_form(&head[head_len..]))
                };
                let to = format!(
                    "{};st={}{}",
                    spec.uri,
                    st.code(),
                    &page_uri[spec.uri.len()..]
                );
                return (see_other(&to), Answer::Page);
            }
            _ => {
                let st = PostStatus::Ival.code();
                let to = format!("{};st={st}{}", spec.uri, &page_uri[spec.uri.len()..]);
                return (see_other(&to), Answer::Page);
            }
        }
        let table = self.table.borrow();
        let rows = stats::rows(&self.config, &self.shared, &table, Some(latency));
        let (ctype, body) = if flags.contains(&"csv") {
            ("text/plain", stats::csv(&rows))
        } else if flags.contains(&"json") {
            ("application/json", stats::json(&rows))
        } else {
            let refresh = if flags.contains(&"norefresh") {
                0
            } else {
                spec.refresh.map_or(0, |d| d.as_secs())
            };
            let page = stats::Page {
                pid: std::process::id(),
                uptime_s: table.started.elapsed().as_secs(),
                refresh,
                hide_version: spec.hide_version,
                uri: &page_uri,
                admin,
                notice: PostStatus::from_uri(opts).map(PostStatus::notice),
            };
            ("text/html", stats::html(&rows, &page))
        };
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: close\r\n\
             Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if req.method != Some("HEAD") {
            out.extend_from_slice(body.as_bytes());
        }
        (out, Answer::Page)
    }
}

/// A stats connection's place in its frontend's `scur` (and `stot`, `smax`),
/// held while the connection lives.
struct Place<'a> {
    gauge: &'a crate::state::shared::FrontendShared,
}

impl<'a> Place<'a> {
    fn take(shared: &'a Shared, frontend: usize) -> Place<'a> {
        use std::sync::atomic::Ordering;
        let gauge = &shared.frontends[frontend];
        // No limit: the stats page is not counted against `maxconn`.
        gauge.active.try_acquire(0);
        gauge.total.fetch_add(1, Ordering::Relaxed);
        crate::shard::dispatch::note_max(&gauge.max_active, gauge.active.get());
        Place { gauge }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.gauge.active.release();
    }
}

/// The status code of a response this page wrote.
fn status_of(resp: &[u8]) -> u16 {
    resp.get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// HAProxy's answer to a post: back to the page, with the result in the URI
/// (a reload then shows it rather than posting again).
fn see_other(location: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 303 See Other\r\nCache-Control: no-cache\r\nContent-Type: text/plain\r\n\
         Content-Length: 0\r\nLocation: {location}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// A POST's `Content-Length` (capped: what is past `MAX_FORM` is not read).
fn form_length(head: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(n) = req.parse(head).ok()? else {
        return None;
    };
    if req.method != Some("POST") {
        return None;
    }
    let len = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })?;
    Some(n + len.min(MAX_FORM + 1))
}

/// Reads into `buf` until it holds `want` bytes; false on EOF.
async fn read_to(c: &mut TcpStream, buf: &mut Vec<u8>, want: usize) -> bool {
    let mut chunk = [0u8; 2048];
    while buf.len() < want {
        match c.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// How reading a request head ended.
enum Head {
    Complete,
    /// EOF (or a reset) first.
    Closed,
    /// Past 16 KiB without its end.
    TooLong,
}

/// Reads a request head (up to 16 KiB) into `buf`, which holds what came
/// however it ends.
async fn read_head(c: &mut TcpStream, buf: &mut Vec<u8>) -> Head {
    let mut chunk = [0u8; 2048];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Head::Complete;
        }
        if buf.len() > 16 << 10 {
            return Head::TooLong;
        }
        match c.read(&mut chunk).await {
            Ok(0) | Err(_) => return Head::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// `stats auth` (any of several `user:password`), Basic scheme; none = open.
fn authorized(spec: &StatsSpec, header: Option<&[u8]>) -> bool {
    if spec.auth.is_empty() {
        return true;
    }
    let Some(v) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return false;
    };
    let Some(b64) = v.trim().strip_prefix("Basic ").map(str::trim) else {
        return false;
    };
    let Some(cred) = base64_decode(b64).and_then(|b| String::from_utf8(b).ok()) else {
        return false;
    };
    spec.auth.contains(&cred)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode_and_match_any_listed_pair() {
        assert_eq!(base64_decode("YWRtaW46YWRtaW4=").unwrap(), b"admin:admin");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("!!").is_none());
        let spec = StatsSpec {
            uri: "/stats".into(),
            refresh: None,
            realm: None,
            auth: vec!["admin:admin".into(), "ops:s3cret".into()],
            admin: None,
            admin_negate: false,
            hide_version: false,
        };
        assert!(authorized(&spec, Some(b"Basic YWRtaW46YWRtaW4=")));
        assert!(authorized(&spec, Some(b"Basic b3BzOnMzY3JldA==")));
        assert!(
            !authorized(&spec, Some(b"Basic YWRtaW46d3Jvbmc=")),
            "admin:wrong"
        );
        assert!(!authorized(&spec, None));
        assert!(!authorized(&spec, Some(b"Bearer x")));
    }
}
