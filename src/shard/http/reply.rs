//! How a request that cannot go on is answered and how every request is
//! logged: HAProxy's error pages, the `<BADREQ>` lines of requests that never
//! got a head, the one `httplog` line per request, and the copy of a
//! malformed request or response kept for `show errors`.

use std::time::{Instant, SystemTime};

use super::super::connect::ConnectInfo;
use super::io::{send_all, Sent};
use super::{deadline, Conn};
use crate::http::errors::error_response;
use crate::http::message::{Event, RequestReader};
use crate::http::rewrite::HttpMode;
use crate::http::timing::Timeline;
use crate::log::{HttpRecord, SessionRecord, Termination};
use crate::state::errors::{Capture, Direction};

impl Conn<'_> {
    /// A request that failed before its head was complete: HAProxy's page
    /// (unless the client is gone), a `<BADREQ>` line with no backend and no
    /// bytes counted, and the end of the connection.
    pub(super) async fn refuse<T>(
        &mut self,
        rec: &mut SessionRecord,
        request_time: SystemTime,
        tl: &Timeline,
        status: u16,
        term: Termination,
        answer: bool,
    ) -> Option<T> {
        if term == Termination::PROXY_REQUEST {
            self.capture(Direction::Request, rec);
        }
        if answer {
            self.answer_error(status, None).await.ok();
        }
        rec.bytes_down = 0;
        rec.bytes_up = self.cin.data().len() as u64;
        self.log(rec, request_time, tl, None, status, term);
        None
    }

    /// The line of a request ended by its kill switch (`hard-stop-after`: `K`,
    /// its server marked down with `shutdown-sessions`: `D`), in the phase it
    /// was in; nothing for a connection killed between requests.
    pub(super) fn log_killed(&mut self, rec: &mut SessionRecord) {
        let Some((line, request_time, start)) = self.in_flight.take() else {
            return;
        };
        let who = if self.ctx.killed.get() || self.kill.by_operator() {
            b'K'
        } else {
            b'D'
        };
        let phase = if rec.bytes_down == 0 { b'H' } else { b'D' };
        let tl = Timeline::new(start);
        self.log(
            rec,
            request_time,
            &tl,
            Some(line),
            0,
            Termination([who, phase]),
        );
    }

    pub(super) fn fill_connect(&self, rec: &mut SessionRecord, info: &ConnectInfo) {
        rec.server = info.server;
        rec.retries = info.retries;
        rec.redispatched = info.redispatched;
    }

    /// Sends HAProxy's error page for `status` (the connection closes after).
    pub(super) async fn answer_error(
        &mut self,
        status: u16,
        backend: Option<usize>,
    ) -> Result<(), ()> {
        self.out.clear();
        let page = custom_page(&self.ctx.config, self.frontend, backend, status)
            .or_else(|| error_response(status));
        if let Some(page) = page {
            self.out.extend_from_slice(page);
        }
        let d = deadline(self.ctx.config.frontends[self.frontend].timeouts.client);
        match send_all(self.client, &self.out, d).await {
            Sent::Done => {
                self.linger = true;
                Ok(())
            }
            _ => Err(()),
        }
    }

    pub(super) async fn fail_503(
        &mut self,
        rec: &mut SessionRecord,
        request_time: SystemTime,
        tl: &Timeline,
        line: Box<[u8]>,
        term: Termination,
    ) -> bool {
        self.fail(rec, request_time, tl, line, 503, term).await
    }

    /// Answers `status` with HAProxy's page, logs, and ends the connection.
    pub(super) async fn fail(
        &mut self,
        rec: &mut SessionRecord,
        request_time: SystemTime,
        tl: &Timeline,
        line: Box<[u8]>,
        status: u16,
        term: Termination,
    ) -> bool {
        match term {
            Termination::PROXY_REQUEST => self.capture(Direction::Request, rec),
            Termination::PROXY_HEADERS => self.capture(Direction::Response, rec),
            _ => {}
        }
        self.live.set_server(None);
        if self.answer_error(status, rec.backend).await.is_ok() {
            rec.bytes_down += self.out.len() as u64;
        }
        self.log(rec, request_time, tl, Some(line), status, term);
        false
    }

    /// A request answered by a rule (`deny`, `auth`, `redirect`, `return`;
    /// `tarpit` after holding it `timeout tarpit`): the response the rules
    /// wrote in `self.out` goes to the client and the line is logged with no
    /// server. As HAProxy 2.6, the connection goes on (true) when
    /// `keep_alive` (the client keeps alive; for a redirect, the request also
    /// has no body) and the request's body, if any, is already here (it is
    /// skipped); otherwise it closes, and a redirect then says
    /// `connection: close`.
    pub(super) async fn answer_rule(
        &mut self,
        reader: &mut RequestReader,
        rec: &mut SessionRecord,
        (request_time, tl, line): (SystemTime, &Timeline, Box<[u8]>),
        (status, term, tarpit, redirect, keep_alive): (u16, Termination, bool, bool, bool),
    ) -> bool {
        let t = &self.ctx.config.frontends[self.frontend].timeouts;
        if tarpit {
            if let Some(until) = deadline(t.tarpit) {
                crate::ring::sleep_until(until).await;
            }
        }
        let keep = keep_alive
            && self.mode != HttpMode::Close
            && !self.ctx.stopping.get()
            && !says_close(&self.out)
            && skip_buffered_body(reader, &mut self.cin);
        if !keep && redirect && !says_close(&self.out) {
            if let Some(end) = self.out.windows(4).position(|w| w == b"\r\n\r\n") {
                let at = end + 2;
                self.out
                    .splice(at..at, b"connection: close\r\n".iter().copied());
            }
        }
        rec.server = None;
        match send_all(self.client, &self.out, deadline(t.client)).await {
            Sent::Done => rec.bytes_down = self.out.len() as u64,
            _ => return false,
        }
        self.log(rec, request_time, tl, Some(line), status, term);
        if !keep {
            self.linger = true;
        }
        keep
    }

    /// Keeps the message being refused for `show errors`: a request's bytes
    /// as the client sent them, a response's as the server did. Only here,
    /// on the error path, is anything copied.
    fn capture(&self, dir: Direction, rec: &SessionRecord) {
        let ctx = self.ctx;
        let client = if rec.client.ip().is_unspecified() {
            self.sock.peer_addr().unwrap_or(rec.client)
        } else {
            rec.client
        };
        let (proxy, other, bytes) = match (dir, rec.backend) {
            (Direction::Request, _) => (self.frontend, rec.backend, self.cin.data()),
            (Direction::Response, Some(b)) => (b, Some(self.frontend), self.sin.data()),
            (Direction::Response, None) => return,
        };
        ctx.shared.errors.capture(
            dir,
            Capture {
                proxy,
                other,
                server: rec.server,
                client,
                bytes,
                size: ctx.config.global.tune.bufsize,
            },
        );
    }

    /// `%hr`'s slots: the `capture request header` values, then the
    /// `http-request capture` ones (HAProxy numbers both in file order; a
    /// frontend using both kinds sees the header ones first here).
    fn request_captures(&self) -> Vec<Box<[u8]>> {
        let fe = &self.ctx.config.frontends[self.frontend];
        let rule_slots = fe.rules.get().map_or(0, |r| r.capture_slots);
        let mut out = slots(&self.req_caps, fe.request_captures.len(), &[]);
        let rule = slots(&[], rule_slots, self.rules.captures());
        out.extend(rule);
        out
    }

    pub(super) fn log(
        &self,
        rec: &mut SessionRecord,
        request_time: SystemTime,
        tl: &Timeline,
        line: Option<Box<[u8]>>,
        status: u16,
        term: Termination,
    ) {
        let ctx = self.ctx;
        let fe = &ctx.config.frontends[self.frontend];
        let times = tl.log_times(Instant::now());
        rec.termination = term;
        rec.tw_ms = times.tw;
        rec.tc_ms = times.tc;
        rec.tt_ms = times.ta;
        rec.actconn = ctx.shared.actconn.get();
        rec.feconn = ctx.shared.frontends[self.frontend].active.get();
        if let Some(b) = rec.backend {
            rec.beconn = ctx.shared.backends[b].active.get();
            if let Some(s) = rec.server {
                rec.srv_conn = ctx.shared.backends[b].servers[s].active.get();
            }
        }
        // The stats page's counters and latency histograms, once per request.
        ctx.account_with_response(rec, Some(status), times.tr_response);
        ctx.logger.http(HttpRecord {
            session: rec.clone(),
            request_time,
            tr_request_ms: times.tr_request,
            tr_response_ms: times.tr_response,
            ta_ms: times.ta,
            status,
            request_line: line,
            request_captures: self.request_captures(),
            response_captures: slots(&self.res_caps, fe.response_captures.len(), &[]),
            persistence: self.rules.cookie_flags,
            log_level: self.rules.log_level(),
            samples: {
                let facts = super::rules::Facts {
                    ctx,
                    frontend: self.frontend,
                    client: rec.client,
                    local: self.local,
                    tls: self.tls,
                };
                self.rules.log_samples(&facts, rec.backend)
            },
        });
    }
}

/// Whether a response head carries `Connection: close` (the answers HAProxy's
/// rules write put it on its own line, lower case).
fn says_close(response: &[u8]) -> bool {
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    response[..head_end].split(|&b| b == b'\n').any(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        l.len() == 17 && l.eq_ignore_ascii_case(b"connection: close")
    })
}

/// The `errorfile` response for `status`: the backend's once the request is
/// routed, else the frontend's (HAProxy's `http_error_message`).
pub(super) fn custom_page(
    config: &crate::config::model::Config,
    frontend: usize,
    backend: Option<usize>,
    status: u16,
) -> Option<&[u8]> {
    backend
        .and_then(|b| config.backends[b].errorfiles.get(status))
        .or_else(|| config.frontends[frontend].errorfiles.get(status))
}

/// `n` capture slots: `have` (header captures) or `rules` (rule captures) in
/// order, empty where nothing was captured.
fn slots(have: &[Box<[u8]>], n: usize, rules: &[Vec<u8>]) -> Vec<Box<[u8]>> {
    (0..n)
        .map(|i| match (have.get(i), rules.get(i)) {
            (Some(v), _) => v.clone(),
            (None, Some(v)) => Box::from(&v[..]),
            (None, None) => Box::default(),
        })
        .collect()
}

/// Moves `reader` past the body of a request answered without the server
/// when all of it is already in `cin`; false when some has not arrived (the
/// connection then closes rather than wait for it).
fn skip_buffered_body(reader: &mut RequestReader, cin: &mut super::io::Inbuf) -> bool {
    // Each step consumes bytes or ends; the bound only guards a parser bug.
    for _ in 0..1_000_000 {
        match reader.next(cin.data(), Instant::now()) {
            Ok(Event::Data { len }) | Ok(Event::Framing { len }) if len > 0 => cin.consume(len),
            Ok(Event::End { len }) => {
                cin.consume(len);
                return true;
            }
            _ => return false,
        }
    }
    false
}
