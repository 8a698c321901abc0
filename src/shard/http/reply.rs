//! How a request that cannot go on is answered and how every request is
//! logged: HAProxy's error pages, the `<BADREQ>` lines of requests that never
//! got a head, the one `httplog` line per request, and the copy of a
//! malformed request or response kept for `show errors`.

use std::time::{Instant, SystemTime};

use super::super::connect::ConnectInfo;
use super::io::{send_all, Sent};
use super::{deadline, Conn};
use crate::http::errors::error_response;
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
            self.answer_error(status).await.ok();
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
    pub(super) async fn answer_error(&mut self, status: u16) -> Result<(), ()> {
        self.out.clear();
        if let Some(page) = error_response(status) {
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
        if self.answer_error(status).await.is_ok() {
            rec.bytes_down += self.out.len() as u64;
        }
        self.log(rec, request_time, tl, Some(line), status, term);
        false
    }

    /// Keeps the message being refused for `show errors`: a request's bytes
    /// as the client sent them, a response's as the server did. Only here,
    /// on the error path, is anything copied.
    fn capture(&self, dir: Direction, rec: &SessionRecord) {
        let ctx = self.ctx;
        let client = if rec.client.ip().is_unspecified() {
            self.client.peer_addr().unwrap_or(rec.client)
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
            request_captures: Vec::new(),
            response_captures: Vec::new(),
        });
    }
}
