//! An HTTP/1.1 session (`mode http`): requests read from the client one after
//! the other (keep-alive, pipelining answered in order), each routed and
//! balanced on its own, sent on a server connection taken from the shard's idle
//! pool or made with `connect::connect_slot`, its response forwarded back, one
//! `httplog` line per request. The sans-io core in `crate::http` decides what
//! the bytes mean; this module only moves them (`http_io`) and says how each
//! request ended, in HAProxy's termination codes.
//!
//! Timeouts as HAProxy 2.6: `timeout http-request` for a head (from its first
//! byte; the first request also from the accept), `timeout http-keep-alive`
//! between requests (else `http-request`), `timeout client`/`server` while
//! bodies move, `timeout tunnel` after `101 Switching Protocols`.

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::connect::{connect_slot, ConnectInfo};
use super::ctx::ShardCtx;
use super::http_io::{fill, send_all, Inbuf, Read, Sent};
use super::idle::still_open;
use super::live::LiveKey;
use crate::balance::HashKey;
use crate::config::model::{Backend, Balance, HttpReuse};
use crate::http::errors::error_response;
use crate::http::hashkey::{hdr_key, uri_key, url_param, UriOptions};
use crate::http::head::{Limits, RequestHead};
use crate::http::message::{Event, RequestReader, ResponseReader};
use crate::http::rewrite::{
    client_keep_alive, server_keep_alive, write_request, write_response, ForwardFor, HttpMode,
    RequestContext,
};
use crate::http::timing::Timeline;
use crate::http::validate::BodyKind;
use crate::l4::KillSwitch;
use crate::log::{HttpRecord, SessionRecord, Termination};
use crate::sys::socket::Socket;

/// `tune.maxrewrite` and `tune.http.maxhdr`, HAProxy's defaults.
const MAXREWRITE: usize = 1024;
const MAXHDR: usize = 101;
/// Body runs at least this long are spliced rather than copied.
const SPLICE_MIN: u64 = 64 * 1024;

/// Which backend serves this request: the hook `use_backend` rules plug into.
/// Today every request goes to the frontend's default backend.
pub fn route(ctx: &ShardCtx, frontend: usize, _head: &RequestHead, _buf: &[u8]) -> Option<usize> {
    ctx.config.frontends[frontend].default_backend
}

/// What `balance` hashes for a request, kept past the request head's buffer
/// (a retry or redispatch hashes it again).
enum OwnedKey {
    None,
    Addr(IpAddr),
    Bytes(Vec<u8>),
}

impl OwnedKey {
    fn key(&self) -> HashKey<'_> {
        match self {
            OwnedKey::None => HashKey::None,
            OwnedKey::Addr(ip) => HashKey::Addr(*ip),
            OwnedKey::Bytes(b) => HashKey::Bytes(b),
        }
    }
}

/// What `balance` hashes for this request.
fn hash_key(be: &Backend, head: &RequestHead, buf: &[u8], client: IpAddr) -> OwnedKey {
    let target = head.target.get(buf);
    let key = match be.balance {
        Balance::Source => return OwnedKey::Addr(client),
        Balance::Uri => Some(uri_key(target, &UriOptions::default())),
        Balance::UrlParam => be
            .balance_arg
            .as_deref()
            .and_then(|n| url_param(target, n.as_bytes())),
        Balance::Hdr => be
            .balance_arg
            .as_deref()
            .and_then(|n| hdr_key(&head.headers, buf, n, false)),
        _ => None,
    };
    key.map_or(OwnedKey::None, |k| OwnedKey::Bytes(k.to_vec()))
}

/// What the session carries from one request to the next.
struct Conn<'a> {
    ctx: &'a Rc<ShardCtx>,
    frontend: usize,
    client: &'a Socket,
    cin: Inbuf,
    sin: Inbuf,
    out: Vec<u8>,
    limits: Limits,
    mode: HttpMode,
    forward_for: Option<ForwardFor>,
    live: &'a LiveKey<'a>,
    kill: &'a Rc<KillSwitch>,
    /// `http-reuse never`: this client's server connection (backend, server).
    private: Option<(usize, usize, Socket)>,
}

fn deadline(t: Option<Duration>) -> Option<Instant> {
    t.and_then(|t| Instant::now().checked_add(t))
}

/// Serves one client connection in `mode http` until it closes.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    ctx: &Rc<ShardCtx>,
    frontend: usize,
    client: &Socket,
    base: &SessionRecord,
    t0: Instant,
    live: &LiveKey<'_>,
    kill: &Rc<KillSwitch>,
) {
    let fe = &ctx.config.frontends[frontend];
    let bufsize = ctx.config.global.tune.bufsize.max(1024);
    let mut conn = Conn {
        ctx,
        frontend,
        client,
        cin: Inbuf::new(ctx.pools.buffers.take()),
        sin: Inbuf::new(ctx.pools.buffers.take()),
        out: Vec::with_capacity(1024),
        limits: Limits::new(bufsize, MAXREWRITE, MAXHDR),
        mode: if fe.httpclose {
            HttpMode::Close
        } else {
            HttpMode::KeepAlive
        },
        forward_for: fe.forwardfor.then(ForwardFor::default),
        live,
        kill,
        private: None,
    };
    let mut reader = RequestReader::new(conn.limits);
    let mut first = true;
    let mut request_time = base.accept_time;
    let mut idle_from = t0;
    loop {
        let mut record = base.clone();
        let more = conn
            .request(&mut reader, &mut record, first, idle_from, request_time)
            .await;
        first = false;
        idle_from = Instant::now();
        request_time = SystemTime::now();
        if !more || kill.is_killed() {
            break;
        }
    }
    ctx.pools.buffers.put(conn.cin.into_vec());
    ctx.pools.buffers.put(conn.sin.into_vec());
}

impl Conn<'_> {
    /// Reads, forwards and logs one request; false when the connection ends.
    async fn request(
        &mut self,
        reader: &mut RequestReader,
        rec: &mut SessionRecord,
        first: bool,
        idle_from: Instant,
        mut request_time: SystemTime,
    ) -> bool {
        let ctx = self.ctx;
        let fe = &ctx.config.frontends[self.frontend];
        let t = &fe.timeouts;
        // Until routed, a request has no backend (`web/<NOSRV>` in its line) and
        // an error answered before its head counts no bytes, as in HAProxy.
        rec.backend = None;
        // Waiting for the first byte: the first request from the accept
        // (`timeout http-request`), the next ones `timeout http-keep-alive`.
        let idle_limit = if first {
            t.http_request.or(t.client)
        } else {
            t.http_keep_alive.or(t.http_request).or(t.client)
        };
        if self.cin.is_empty() {
            if ctx.stopping.get() {
                return false;
            }
            let idle_deadline = idle_limit.and_then(|d| idle_from.checked_add(d));
            self.live.set_idle(!first);
            let read = fill(self.client, &mut self.cin, idle_deadline).await;
            self.live.set_idle(false);
            match read {
                Read::Data => {}
                Read::Timeout if first => {
                    let tl = Timeline::new(idle_from);
                    self.answer_error(408).await.ok();
                    rec.bytes_down = 0;
                    self.log(
                        rec,
                        request_time,
                        &tl,
                        None,
                        408,
                        Termination::CLIENT_REQUEST_TIMEOUT,
                    );
                    return false;
                }
                // Idle keep-alive connections close silently, as HAProxy's.
                _ => return false,
            }
            if !first {
                request_time = SystemTime::now();
            }
        }
        let start = if first { idle_from } else { Instant::now() };
        let mut tl = Timeline::new(start);
        let head_deadline = t
            .http_request
            .or(t.client)
            .and_then(|d| start.checked_add(d));
        // The head.
        let head_len = loop {
            match reader.next(self.cin.data(), Instant::now()) {
                Ok(Event::Head { len }) => break len,
                Ok(Event::NeedMore) => {}
                // Body events only come after a head: a bug, answered as a
                // bad request rather than a panic.
                other => {
                    let status = match other {
                        Err(e) => e.request_status(),
                        Ok(_) => 400,
                    };
                    self.answer_error(status).await.ok();
                    rec.bytes_down = 0;
                    rec.bytes_up = self.cin.data().len() as u64;
                    self.log(
                        rec,
                        request_time,
                        &tl,
                        None,
                        status,
                        Termination::PROXY_REQUEST,
                    );
                    return false;
                }
            }
            match fill(self.client, &mut self.cin, head_deadline).await {
                Read::Data => {}
                Read::Timeout => {
                    self.answer_error(408).await.ok();
                    rec.bytes_down = 0;
                    rec.bytes_up = self.cin.data().len() as u64;
                    self.log(
                        rec,
                        request_time,
                        &tl,
                        None,
                        408,
                        Termination::CLIENT_REQUEST_TIMEOUT,
                    );
                    return false;
                }
                // A head longer than the buffer: the parser's limit is below it,
                // so this is only reached with a tiny `tune.bufsize`.
                Read::Full => {
                    self.answer_error(400).await.ok();
                    rec.bytes_down = 0;
                    self.log(
                        rec,
                        request_time,
                        &tl,
                        None,
                        400,
                        Termination::PROXY_REQUEST,
                    );
                    return false;
                }
                Read::Eof | Read::Failed => {
                    rec.bytes_up = self.cin.data().len() as u64;
                    self.log(
                        rec,
                        request_time,
                        &tl,
                        None,
                        400,
                        Termination::CLIENT_REQUEST_ABORT,
                    );
                    return false;
                }
            }
        };
        tl.head_received = Some(Instant::now());
        let buf = self.cin.data();
        let head = reader.head();
        let Some(&info) = reader.info() else {
            return false;
        };
        let line = head.request_line(buf);
        let method = head.method;
        let version = head.version;
        let Some(backend) = route(ctx, self.frontend, head, buf) else {
            rec.backend = None;
            self.cin.consume(head_len);
            self.answer_error(503).await.ok();
            rec.bytes_down = self.out.len() as u64;
            self.log(
                rec,
                request_time,
                &tl,
                Some(line),
                503,
                Termination::NO_SERVER,
            );
            return false;
        };
        rec.backend = Some(backend);
        let be = &ctx.config.backends[backend];
        let rctx = RequestContext {
            mode: self.mode,
            forward_for: self.forward_for.as_ref(),
            client: rec.client.ip(),
        };
        let mut req_head = Vec::with_capacity(head_len + 64);
        write_request(head, &info, buf, &rctx, &mut req_head);
        let owned_key = hash_key(be, head, buf, rec.client.ip());
        let key = owned_key.key();

        // A server: a slot, then an idle connection or a new one.
        let shared = &ctx.shared.backends[backend];
        shared.total.fetch_add(1, Ordering::Relaxed);
        rec.backend_queue = shared.queued.0.load(Ordering::Relaxed);
        let mut cinfo = ConnectInfo::new();
        let slot = match ctx.obtain(backend, key, None).await {
            Ok(s) => s,
            Err(term) => {
                self.cin.consume(head_len);
                return self.fail_503(rec, request_time, &tl, line, term).await;
            }
        };
        tl.dequeued = Some(Instant::now());
        cinfo.tw_ms = 0;
        // `http-reuse`: `safe` gives a connection's first request a server
        // connection of its own and lets later ones take any idle one;
        // `never` reuses only this client's own previous connection.
        let pooled = match (be.http_reuse, first) {
            _ if self.mode != HttpMode::KeepAlive => None,
            (HttpReuse::Never, _) => match self.private.take() {
                Some((b, s, sock)) if b == backend && s == slot.server && still_open(&sock) => {
                    Some(sock)
                }
                _ => None,
            },
            (HttpReuse::Safe, true) => None,
            _ => ctx.idle.take(backend, slot.server),
        };
        let no_body = info.body == BodyKind::None || info.body == BodyKind::Length(0);
        let retryable = method.is_idempotent() && no_body;
        let (mut slot, mut server, mut reused) = match pooled {
            Some(s) => {
                cinfo.server = Some(slot.server);
                cinfo.tc_ms = 0;
                (slot, s, true)
            }
            None => match connect_slot(ctx, backend, key, slot, &mut cinfo).await {
                Ok((slot, s)) => (slot, s, false),
                Err(term) => {
                    self.fill_connect(rec, &cinfo);
                    self.cin.consume(head_len);
                    return self.fail_503(rec, request_time, &tl, line, term).await;
                }
            },
        };
        self.cin.consume(head_len);
        tl.connected = Some(Instant::now());
        self.fill_connect(rec, &cinfo);
        self.live.set_server(Some(slot.server));
        rec.bytes_up = head_len as u64;

        // The request: head, then body (after `100 Continue` if asked for).
        let server_t = be.timeouts.server;
        let client_t = t.client;
        let mut resp = ResponseReader::new(self.limits);
        resp.expect(method);
        self.sin.clear();
        let mut sent = send_all(&server, &req_head, deadline(server_t)).await;
        if !matches!(sent, Sent::Done) && reused && retryable {
            // The idle connection died under us: once more on a fresh one.
            drop(server);
            match connect_slot(ctx, backend, key, slot, &mut cinfo).await {
                Ok((s, sock)) => {
                    slot = s;
                    server = sock;
                    reused = false;
                    self.fill_connect(rec, &cinfo);
                    sent = send_all(&server, &req_head, deadline(server_t)).await;
                }
                Err(term) => {
                    self.fill_connect(rec, &cinfo);
                    return self.fail_503(rec, request_time, &tl, line, term).await;
                }
            }
        }
        if !matches!(sent, Sent::Done) {
            drop(slot);
            return self
                .fail(
                    rec,
                    request_time,
                    &tl,
                    line,
                    502,
                    Termination::SERVER_HEADERS_ABORT,
                )
                .await;
        }
        let mut abandoned_body = false;
        let mut early_head = None;
        if !no_body && info.expect_continue {
            // The server speaks first: `100 Continue` (forwarded) or a
            // final answer (the body is then never read).
            match self
                .read_interim(&mut resp, &server, server_t, version)
                .await
            {
                Ok(None) => {}
                Ok(Some(len)) => {
                    abandoned_body = true;
                    early_head = Some(len);
                }
                Err((status, term)) => {
                    drop(slot);
                    return self.fail(rec, request_time, &tl, line, status, term).await;
                }
            }
        }
        // Also for a request without a body: its reader moves on to `End`.
        if !abandoned_body {
            if let Err(term) = self
                .forward_body_up(reader, &server, client_t, server_t, rec)
                .await
            {
                if term == Termination::SERVER_ABORT {
                    // The server stopped reading (a 413, say): its answer may
                    // already be on the way, and goes to the client if it is.
                    abandoned_body = true;
                } else {
                    drop(slot);
                    if term == Termination::PROXY_REQUEST {
                        return self.fail(rec, request_time, &tl, line, 400, term).await;
                    }
                    self.live.set_server(None);
                    self.log(rec, request_time, &tl, Some(line), 0, term);
                    return false;
                }
            }
        }

        // The response head (interim ones forwarded first).
        let mut retried = false;
        let rinfo = loop {
            let ev = match early_head.take() {
                Some(len) => Ok(Event::Head { len }),
                None => resp.next(self.sin.data(), Instant::now()),
            };
            match ev {
                Ok(Event::Head { len }) => {
                    let rinfo = *resp.info().expect("info after head");
                    if rinfo.interim {
                        write_response(
                            resp.head(),
                            &rinfo,
                            self.sin.data(),
                            version,
                            true,
                            &mut self.out,
                        );
                        self.sin.consume(len);
                        let _ = resp.next(self.sin.data(), Instant::now());
                        if let Sent::Done =
                            send_all(self.client, &self.out, deadline(client_t)).await
                        {
                            rec.bytes_down += self.out.len() as u64;
                        }
                        continue;
                    }
                    tl.response_head = Some(Instant::now());
                    break (rinfo, len);
                }
                Ok(Event::NeedMore) => {}
                Ok(_) | Err(_) => {
                    drop(slot);
                    return self
                        .fail(
                            rec,
                            request_time,
                            &tl,
                            line,
                            502,
                            Termination::PROXY_HEADERS,
                        )
                        .await;
                }
            }
            match fill(&server, &mut self.sin, deadline(server_t)).await {
                Read::Data => {}
                Read::Timeout => {
                    drop(slot);
                    return self
                        .fail(
                            rec,
                            request_time,
                            &tl,
                            line,
                            504,
                            Termination::SERVER_HEADERS_TIMEOUT,
                        )
                        .await;
                }
                Read::Eof | Read::Failed | Read::Full => {
                    if reused && retryable && !retried && self.sin.is_empty() {
                        // A reused connection closed before any byte came back.
                        retried = true;
                        drop(server);
                        match connect_slot(ctx, backend, key, slot, &mut cinfo).await {
                            Ok((s, sock)) => {
                                slot = s;
                                server = sock;
                                reused = false;
                                self.fill_connect(rec, &cinfo);
                                if let Sent::Done =
                                    send_all(&server, &req_head, deadline(server_t)).await
                                {
                                    continue;
                                }
                            }
                            Err(term) => {
                                self.fill_connect(rec, &cinfo);
                                return self.fail_503(rec, request_time, &tl, line, term).await;
                            }
                        }
                    }
                    drop(slot);
                    return self
                        .fail(
                            rec,
                            request_time,
                            &tl,
                            line,
                            502,
                            Termination::SERVER_HEADERS_ABORT,
                        )
                        .await;
                }
            }
        };
        let _ = reused;
        let (rinfo, rlen) = rinfo;
        let status = resp.head().status;
        let keep =
            client_keep_alive(self.mode, &info, &rinfo) && !abandoned_body && !ctx.stopping.get();
        let server_keep = server_keep_alive(self.mode, &rinfo);
        write_response(
            resp.head(),
            &rinfo,
            self.sin.data(),
            version,
            keep,
            &mut self.out,
        );
        self.sin.consume(rlen);
        match send_all(self.client, &self.out, deadline(client_t)).await {
            Sent::Done => rec.bytes_down += self.out.len() as u64,
            Sent::Timeout => {
                drop(slot);
                self.log(
                    rec,
                    request_time,
                    &tl,
                    Some(line),
                    status,
                    Termination(*b"cD"),
                );
                return false;
            }
            Sent::Failed => {
                drop(slot);
                self.log(
                    rec,
                    request_time,
                    &tl,
                    Some(line),
                    status,
                    Termination::CLIENT_ABORT,
                );
                return false;
            }
        }
        if rinfo.body == BodyKind::Tunnel {
            reader.into_tunnel();
            let term = self.tunnel(&server, be, rec).await;
            drop(server);
            drop(slot);
            self.log(rec, request_time, &tl, Some(line), status, term);
            return false;
        }
        let ended = self
            .forward_body_down(&mut resp, &server, client_t, server_t, rec)
            .await;
        let clean = ended.is_ok() && self.sin.is_empty();
        let term = ended.err().unwrap_or(Termination::NORMAL);
        let server_id = slot.server;
        drop(slot);
        self.live.set_server(None);
        if clean && server_keep && rinfo.body != BodyKind::UntilClose {
            if be.http_reuse == HttpReuse::Never {
                self.private = Some((backend, server_id, server));
            } else {
                ctx.idle.put(backend, server_id, server);
            }
        } else {
            drop(server);
        }
        self.log(rec, request_time, &tl, Some(line), status, term);
        keep && term == Termination::NORMAL
    }

    fn fill_connect(&self, rec: &mut SessionRecord, info: &ConnectInfo) {
        rec.server = info.server;
        rec.retries = info.retries;
        rec.redispatched = info.redispatched;
    }

    /// Sends HAProxy's error page for `status` (the connection closes after).
    async fn answer_error(&mut self, status: u16) -> Result<(), ()> {
        self.out.clear();
        if let Some(page) = error_response(status) {
            self.out.extend_from_slice(page);
        }
        let d = deadline(self.ctx.config.frontends[self.frontend].timeouts.client);
        match send_all(self.client, &self.out, d).await {
            Sent::Done => Ok(()),
            _ => Err(()),
        }
    }

    async fn fail_503(
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
    async fn fail(
        &mut self,
        rec: &mut SessionRecord,
        request_time: SystemTime,
        tl: &Timeline,
        line: Box<[u8]>,
        status: u16,
        term: Termination,
    ) -> bool {
        self.live.set_server(None);
        if self.answer_error(status).await.is_ok() {
            rec.bytes_down += self.out.len() as u64;
        }
        self.log(rec, request_time, tl, Some(line), status, term);
        false
    }

    fn log(
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

#[path = "http_body.rs"]
mod body;
