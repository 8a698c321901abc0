//! An HTTP/1.1 session (`mode http`): requests read from the client one after
//! the other (keep-alive, pipelining answered in order), each routed and
//! balanced on its own, sent on a server connection taken from the shard's idle
//! pool or made with `connect::connect_slot`, its response forwarded back, one
//! `httplog` line per request. The sans-io core in `crate::http` decides what
//! the bytes mean; this module only moves them and says how each request
//! ended, in HAProxy's termination codes. Its parts: `route` (which backend,
//! what to hash), `io` (reads, sends and splices with deadlines on the ring),
//! `body` (request and response bodies, `100 Continue`, the tunnel after
//! `101`), `reply` (error pages and the log line).
//!
//! Timeouts as HAProxy 2.6: `timeout http-request` for a head (from its first
//! byte; the first request also from the accept), `timeout http-keep-alive`
//! between requests (else `http-request`), `timeout client`/`server` while
//! bodies move, `timeout tunnel` after `101 Switching Protocols`.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::connect::{connect_slot, ConnectInfo};
use super::ctx::ShardCtx;
use super::live::LiveKey;
use super::server_conn::ServerConn;
use crate::config::model::{HttpReuse, ProxyProtocol};
use crate::http::capture::capture_headers;
use crate::http::head::Limits;
use crate::http::message::{Event, RequestReader, ResponseReader};
use crate::http::rewrite::{
    client_keep_alive, server_keep_alive, write_request, write_response, ForwardFor, HttpMode,
    RequestContext,
};
use crate::http::timing::Timeline;
use crate::http::validate::BodyKind;
use crate::l4::{KillSwitch, Transport};
use crate::log::{SessionRecord, Termination};
use crate::sys::socket::Socket;
use duplex::Duplex;
use io::{fill, fill_ready, linger_close, send_all, Inbuf, Read, Sent};
use route::hash_key;
use rules::{Decision, Facts, ResponseDecision, RuleState};

/// How long a connection answered with an error may take to close.
const LINGER: Duration = Duration::from_secs(1);
/// Body runs at least this long are spliced rather than copied.
const SPLICE_MIN: u64 = 64 * 1024;

/// What the session carries from one request to the next.
struct Conn<'a> {
    ctx: &'a Rc<ShardCtx>,
    frontend: usize,
    /// The client's socket, or the TLS session over it.
    client: &'a dyn Transport,
    /// The client's socket (its addresses).
    sock: &'a Socket,
    cin: Inbuf,
    sin: Inbuf,
    /// The response head (or error page) going to the client.
    out: Vec<u8>,
    /// The request head going to the server (kept for a retry).
    head_out: Vec<u8>,
    limits: Limits,
    mode: HttpMode,
    forward_for: Option<ForwardFor>,
    live: &'a LiveKey<'a>,
    kill: &'a Rc<KillSwitch>,
    /// `http-reuse never`: this client's server connection (backend, server).
    private: Option<(usize, usize, u64, ServerConn)>,
    /// The idle-pool tag of the server connection in use (see
    /// [`Conn::sni_for`]), for when it is parked.
    server_tag: u64,
    /// The SNI computed for a request (`ssl sni EXPR`), reused.
    sni_buf: Vec<u8>,
    /// The request being served: its line and when it began (`%tr`, and the
    /// instant for `%Ta`), for the log line of a request killed midway.
    in_flight: Option<(Box<[u8]>, SystemTime, Instant)>,
    /// An error was answered: close without a reset (`io::linger_close`).
    linger: bool,
    /// What the rules read and edit, kept across requests.
    rules: RuleState,
    /// `capture request|response header` values of the request in flight.
    req_caps: Vec<Box<[u8]>>,
    res_caps: Vec<Box<[u8]>>,
    /// The address the client connected to (`dst`), read when rules route.
    local: SocketAddr,
    /// The connection came over TLS: its facts (`ssl_fc*` fetches).
    tls: Option<&'a crate::tls::TlsInfo>,
}

fn deadline(t: Option<Duration>) -> Option<Instant> {
    t.and_then(|t| Instant::now().checked_add(t))
}

/// The client side of an HTTP session.
pub enum Client<'a> {
    Plain(&'a Socket),
    /// A TLS session, and what its handshake settled (`ssl_fc*`).
    Tls(&'a crate::tls::TlsTransport, &'a crate::tls::TlsInfo),
}

/// Serves one client connection in `mode http` until it closes.
pub async fn serve(
    ctx: &Rc<ShardCtx>,
    frontend: usize,
    client: Client<'_>,
    base: &SessionRecord,
    t0: Instant,
    live: &LiveKey<'_>,
    kill: &Rc<KillSwitch>,
) {
    let (client, sock, tls): (&dyn Transport, &Socket, _) = match client {
        Client::Plain(s) => (s, s, None),
        Client::Tls(t, info) => (t, t.socket(), Some(info)),
    };
    let fe = &ctx.config.frontends[frontend];
    let bufsize = ctx.config.global.tune.bufsize.max(1024);
    let mut conn = Conn {
        ctx,
        frontend,
        client,
        sock,
        cin: Inbuf::new(ctx.pools.buffers.take()),
        sin: Inbuf::new(ctx.pools.buffers.take()),
        out: Vec::with_capacity(1024),
        head_out: Vec::with_capacity(1024),
        limits: Limits::new(
            bufsize,
            ctx.config.global.tune.maxrewrite.min(bufsize / 2),
            ctx.config.global.tune.http_maxhdr,
        ),
        mode: if fe.httpclose {
            HttpMode::Close
        } else if fe.http_server_close {
            HttpMode::ServerClose
        } else {
            HttpMode::KeepAlive
        },
        forward_for: fe.forwardfor.clone(),
        live,
        kill,
        private: None,
        server_tag: 0,
        sni_buf: Vec::new(),
        in_flight: None,
        linger: false,
        rules: RuleState::default(),
        req_caps: Vec::new(),
        res_caps: Vec::new(),
        local: if ctx.wants_local_addr[frontend] {
            sock.local_addr().unwrap_or(base.client)
        } else {
            base.client
        },
        tls,
    };
    let mut reader = RequestReader::new(conn.limits);
    let mut first = true;
    let mut request_time = base.accept_time;
    let mut idle_from = t0;
    loop {
        let mut record = base.clone();
        conn.in_flight = None;
        let request = conn.request(&mut reader, &mut record, first, idle_from, request_time);
        let more = match kill.guard(request).await {
            Some(more) => more,
            None => {
                conn.log_killed(&mut record);
                false
            }
        };
        first = false;
        idle_from = Instant::now();
        request_time = SystemTime::now();
        if !more || kill.is_killed() {
            break;
        }
    }
    if conn.linger && !kill.is_killed() {
        kill.guard(linger_close(client, LINGER)).await;
    }
    ctx.pools.buffers.put(conn.cin.into_vec());
    ctx.pools.buffers.put(conn.sin.into_vec());
}

impl Conn<'_> {
    /// Waits for a request and reads its head (bounded by `timeout
    /// http-keep-alive` and `http-request`): its length, its timeline and its
    /// `%tr`; `None` when the connection ends instead (logged if it had begun).
    async fn read_head(
        &mut self,
        reader: &mut RequestReader,
        rec: &mut SessionRecord,
        first: bool,
        idle_from: Instant,
        mut request_time: SystemTime,
    ) -> Option<(usize, Timeline, SystemTime)> {
        let ctx = self.ctx;
        let t = &ctx.config.frontends[self.frontend].timeouts;
        // Waiting for the first byte: the first request from the accept
        // (`timeout http-request`), the next ones `timeout http-keep-alive`.
        let idle_limit = if first {
            t.http_request.or(t.client)
        } else {
            t.http_keep_alive.or(t.http_request).or(t.client)
        };
        if self.cin.is_empty() {
            if ctx.stopping.get() {
                return None;
            }
            let idle_deadline = idle_limit.and_then(|d| idle_from.checked_add(d));
            self.live.set_idle(!first);
            let read = fill_ready(self.client, &mut self.cin, idle_deadline).await;
            self.live.set_idle(false);
            match read {
                Read::Data => {}
                Read::Timeout if first => {
                    let tl = Timeline::new(idle_from);
                    let term = Termination::CLIENT_REQUEST_TIMEOUT;
                    return self.refuse(rec, request_time, &tl, 408, term, true).await;
                }
                // A connection closed before its first byte: HAProxy's
                // `<BADREQ>` line (400, `CR--`), which `option dontlognull`
                // drops. Idle keep-alive connections close silently.
                Read::Eof | Read::Failed if first => {
                    let tl = Timeline::new(idle_from);
                    let term = Termination::CLIENT_REQUEST_ABORT;
                    return self.refuse(rec, request_time, &tl, 400, term, false).await;
                }
                _ => return None,
            }
            // HAProxy's `%tr`: the accept date plus the idle time, i.e. the
            // first byte of the request.
            request_time = SystemTime::now();
        }
        // `%TR` and `%Ta` run from the request's first byte; the first
        // request's `timeout http-request` from the accept.
        let start = Instant::now();
        let mut tl = Timeline::new(start);
        let head_deadline = t
            .http_request
            .or(t.client)
            .and_then(|d| if first { idle_from } else { start }.checked_add(d));
        loop {
            let (status, term, answer) = match reader.next(self.cin.data(), Instant::now()) {
                Ok(Event::Head { len }) => {
                    tl.head_received = Some(Instant::now());
                    return Some((len, tl, request_time));
                }
                Ok(Event::NeedMore) => {
                    match fill(self.client, &mut self.cin, head_deadline).await {
                        Read::Data => continue,
                        Read::Timeout => (408, Termination::CLIENT_REQUEST_TIMEOUT, true),
                        // A head longer than the buffer: the parser's limit is
                        // below it, so only a tiny `tune.bufsize` gets here.
                        Read::Full => (400, Termination::PROXY_REQUEST, true),
                        Read::Eof | Read::Failed => (400, Termination::CLIENT_REQUEST_ABORT, false),
                    }
                }
                Err(e) => (e.request_status(), Termination::PROXY_REQUEST, true),
                // Body events only come after a head: a bug, answered as a bad
                // request rather than a panic.
                Ok(_) => (400, Termination::PROXY_REQUEST, true),
            };
            return self
                .refuse(rec, request_time, &tl, status, term, answer)
                .await;
        }
    }

    /// Reads, forwards and logs one request; false when the connection ends.
    async fn request(
        &mut self,
        reader: &mut RequestReader,
        rec: &mut SessionRecord,
        first: bool,
        idle_from: Instant,
        request_time: SystemTime,
    ) -> bool {
        let ctx = self.ctx;
        let t = &ctx.config.frontends[self.frontend].timeouts;
        // Until routed, a request has no backend (`web/<NOSRV>` in its line).
        rec.backend = None;
        self.rules.reset();
        self.req_caps.clear();
        self.res_caps.clear();
        let Some((head_len, mut tl, request_time)) = self
            .read_head(reader, rec, first, idle_from, request_time)
            .await
        else {
            return false;
        };
        let buf = self.cin.data();
        let head = reader.head();
        let Some(&info) = reader.info() else {
            return false;
        };
        let fe = &ctx.config.frontends[self.frontend];
        if !fe.request_captures.is_empty() {
            capture_headers(&head.headers, buf, &fe.request_captures, &mut self.req_caps);
        }
        let line = head.request_line(buf);
        self.in_flight = Some((line.clone(), request_time, tl.request_start));
        let method = head.method;
        let version = head.version;
        let facts = Facts {
            ctx,
            frontend: self.frontend,
            client: rec.client,
            local: self.local,
            tls: self.tls,
        };
        let (decision, edited) = self.rules.request(&facts, head, buf, &mut self.out);
        let (backend, directed) = match decision {
            Decision::Forward { backend, server } => (backend, server),
            Decision::NoBackend => {
                rec.backend = None;
                self.cin.consume(head_len);
                self.answer_error(503, None).await.ok();
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
            }
            Decision::Answer {
                status,
                term,
                tarpit,
                redirect,
            } => {
                self.cin.consume(head_len);
                // HAProxy's redirect closes a connection whose request has
                // a body; its other answers skip the body and go on.
                let no_body = info.body == BodyKind::None || info.body == BodyKind::Length(0);
                let keep_alive = info.keep_alive && (no_body || !redirect);
                let how = (status, term, tarpit, redirect, keep_alive);
                return self
                    .answer_rule(reader, rec, (request_time, &tl, line), how)
                    .await;
            }
        };
        rec.backend = Some(backend);
        let be = &ctx.config.backends[backend];
        let rctx = RequestContext {
            mode: self.mode,
            // HAProxy: the backend's option, if set, else the frontend's.
            forward_for: be.forwardfor.as_ref().or(self.forward_for.as_ref()),
            client: rec.client.ip(),
        };
        let (whead, wbuf) = self.rules.request_head(head, buf, edited);
        write_request(whead, &info, wbuf, &rctx, &mut self.head_out);
        let owned_key = hash_key(be, whead, wbuf, rec.client.ip());
        let key = owned_key.key();

        // A server: a slot, then an idle connection or a new one.
        let shared = &ctx.shared.backends[backend];
        shared.total.fetch_add(1, Ordering::Relaxed);
        rec.backend_queue = shared.queued.0.load(Ordering::Relaxed);
        let mut cinfo = ConnectInfo::new();
        let slot = match directed {
            Some(server) => ctx.obtain_on(backend, server).await,
            None => ctx.obtain(backend, key, None).await,
        };
        let slot = match slot {
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
        let private = self.private_only(backend, slot.server);
        let (tag, _) = self.sni_for(backend, slot.server, rec.client);
        let pooled = match (be.http_reuse, first) {
            _ if self.mode != HttpMode::KeepAlive => None,
            _ if private => match self.private.take() {
                Some((b, s, t, sock))
                    if b == backend && s == slot.server && t == tag && sock.still_open() =>
                {
                    Some(sock)
                }
                _ => None,
            },
            (HttpReuse::Safe, true) => None,
            _ => ctx.idle.take(backend, slot.server, tag),
        };
        self.server_tag = tag;
        let no_body = info.body == BodyKind::None || info.body == BodyKind::Length(0);
        let retryable = method.is_idempotent() && no_body;
        let (mut slot, mut server, mut reused) = match pooled {
            Some(s) => {
                cinfo.server = Some(slot.server);
                cinfo.tc_ms = 0;
                (slot, s, true)
            }
            None => match self
                .connect_new(backend, key, slot, &mut cinfo, rec.client)
                .await
            {
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
        self.live.set_backend(Some(backend));
        self.live.set_server(Some(slot.server));
        rec.bytes_up = head_len as u64;

        // The request: head, then body (after `100 Continue` if asked for).
        let server_t = be.timeouts.server;
        let client_t = t.client;
        let mut resp = ResponseReader::new(self.limits);
        resp.expect(method);
        self.sin.clear();
        let mut sent = send_all(&server, &self.head_out, deadline(server_t)).await;
        if !matches!(sent, Sent::Done) && reused && retryable {
            // The idle connection died under us: once more on a fresh one.
            drop(server);
            match self
                .connect_new(backend, key, slot, &mut cinfo, rec.client)
                .await
            {
                Ok((s, sock)) => {
                    slot = s;
                    server = sock;
                    reused = false;
                    self.fill_connect(rec, &cinfo);
                    sent = send_all(&server, &self.head_out, deadline(server_t)).await;
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
        if !no_body && !abandoned_body {
            // Body up and response down at once.
            let response_head = Cell::new(None);
            let respond = RuleState::wants_response(ctx, self.frontend, backend)
                .then_some((facts, (backend, slot.server)));
            let end = self
                .duplex(
                    reader,
                    &mut resp,
                    &server,
                    &info,
                    version,
                    (client_t, server_t),
                    rec,
                    &response_head,
                    respond,
                )
                .await;
            tl.response_head = response_head.get();
            let server_id = slot.server;
            drop(slot);
            self.live.set_server(None);
            return match end {
                Duplex::Done {
                    rinfo,
                    status,
                    keep_alive,
                    server_stopped_reading,
                } => {
                    let reusable = self.sin.is_empty()
                        && !server_stopped_reading
                        && server_keep_alive(self.mode, &rinfo)
                        && !matches!(rinfo.body, BodyKind::UntilClose | BodyKind::Tunnel);
                    if reusable {
                        self.park(backend, server_id, server);
                    }
                    let term = Termination::NORMAL;
                    self.log(rec, request_time, &tl, Some(line), status, term);
                    keep_alive && !server_stopped_reading && rinfo.body != BodyKind::Tunnel
                }
                Duplex::BeforeHead {
                    status,
                    term,
                    answer: true,
                } => self.fail(rec, request_time, &tl, line, status, term).await,
                Duplex::BeforeHead { status, term, .. } | Duplex::AfterHead { status, term } => {
                    self.log(rec, request_time, &tl, Some(line), status, term);
                    false
                }
            };
        }
        // A request without a body: its reader moves on to `End`.
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
            let read = if self.sin.is_empty() {
                fill_ready(&server, &mut self.sin, deadline(server_t)).await
            } else {
                fill(&server, &mut self.sin, deadline(server_t)).await
            };
            match read {
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
                        match self
                            .connect_new(backend, key, slot, &mut cinfo, rec.client)
                            .await
                        {
                            Ok((s, sock)) => {
                                slot = s;
                                server = sock;
                                reused = false;
                                self.fill_connect(rec, &cinfo);
                                if let Sent::Done =
                                    send_all(&server, &self.head_out, deadline(server_t)).await
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
        let fe = &ctx.config.frontends[self.frontend];
        if !fe.response_captures.is_empty() {
            let h = &resp.head().headers;
            capture_headers(
                h,
                self.sin.data(),
                &fe.response_captures,
                &mut self.res_caps,
            );
        }
        let keep =
            client_keep_alive(self.mode, &info, &rinfo) && !abandoned_body && !ctx.stopping.get();
        let server_keep = server_keep_alive(self.mode, &rinfo);
        let mut edited = false;
        if RuleState::wants_response(ctx, self.frontend, backend) {
            let ids = (backend, slot.server);
            let res = (resp.head(), self.sin.data());
            match self.rules.response(&facts, ids, res, &mut self.out) {
                ResponseDecision::Deny(s) => {
                    drop(slot);
                    let term = Termination::PROXY_HEADERS;
                    return self.fail(rec, request_time, &tl, line, s, term).await;
                }
                ResponseDecision::Forward(e) => edited = e,
            }
        }
        let (rh, rb) = if edited {
            self.rules.response_head()
        } else {
            (resp.head(), self.sin.data())
        };
        let status = rh.status;
        write_response(rh, &rinfo, rb, version, keep, &mut self.out);
        self.sin.consume(rlen);
        if rinfo.body == BodyKind::Tunnel {
            let term = match send_all(self.client, &self.out, deadline(client_t)).await {
                Sent::Done => {
                    rec.bytes_down += self.out.len() as u64;
                    reader.into_tunnel();
                    self.tunnel(&server, be, rec).await
                }
                Sent::Timeout => Termination(*b"cD"),
                Sent::Failed => Termination::CLIENT_ABORT,
            };
            drop(server);
            drop(slot);
            self.log(rec, request_time, &tl, Some(line), status, term);
            return false;
        }
        // The head goes out with the first bytes of the body.
        let ended = self
            .forward_body_down(&mut resp, &server, client_t, server_t, rec)
            .await;
        let clean = ended.is_ok() && self.sin.is_empty();
        let term = ended.err().unwrap_or(Termination::NORMAL);
        let server_id = slot.server;
        drop(slot);
        self.live.set_server(None);
        if clean && server_keep && rinfo.body != BodyKind::UntilClose {
            self.park(backend, server_id, server);
        }
        self.log(rec, request_time, &tl, Some(line), status, term);
        keep && term == Termination::NORMAL
    }

    /// Whether connections to this server serve only the client that opened
    /// them: `http-reuse never`, or `send-proxy` (the PROXY header named
    /// this client, so HAProxy keeps such a connection private too).
    fn private_only(&self, backend: usize, server: usize) -> bool {
        let be = &self.ctx.config.backends[backend];
        be.http_reuse == HttpReuse::Never || be.servers[server].send_proxy.is_some()
    }

    /// A new server connection (`connect_slot`), with the PROXY header sent
    /// first when the server has `send-proxy`/`send-proxy-v2` (the client's
    /// address and the one it connected to), then TLS when it has `ssl`.
    async fn connect_new(
        &mut self,
        backend: usize,
        key: crate::balance::HashKey<'_>,
        slot: super::dispatch::ServerSlot,
        cinfo: &mut ConnectInfo,
        client: SocketAddr,
    ) -> Result<(super::dispatch::ServerSlot, ServerConn), Termination> {
        let ctx = self.ctx;
        let (slot, sock) = connect_slot(ctx, backend, key, slot, cinfo).await?;
        let be = &ctx.config.backends[backend];
        if let Some(v) = be.servers[slot.server].send_proxy {
            let hdr = match v {
                ProxyProtocol::V1 => crate::l4::proxy::v1(client, self.local),
                ProxyProtocol::V2 => crate::l4::proxy::v2(client, self.local),
            };
            if !matches!(
                send_all(&sock, &hdr, deadline(be.timeouts.server)).await,
                Sent::Done
            ) {
                return Err(Termination::CONNECT_REFUSED);
            }
        }
        // `ssl`: TLS after the PROXY header, as HAProxy sends them.
        let (tag, sni) = self.sni_for(backend, slot.server, client);
        self.server_tag = tag;
        let sock = match be.servers[slot.server].ssl.as_deref() {
            None => ServerConn::Plain(sock),
            Some(tls) => {
                let sni = if tls.dynamic_sni {
                    sni
                } else {
                    tls.sni.clone()
                };
                server_tls::handshake(ctx, backend, slot.server, tls, sni, sock).await?
            }
        };
        Ok((slot, sock))
    }

    /// For a server with `ssl sni EXPR`: the name this request's connection
    /// sends, and the idle-pool tag of connections made with it (a hash of
    /// the name; 0 for no SNI, as for every other server). An empty or
    /// unusable value sends no SNI, as HAProxy sends none for an empty one.
    fn sni_for(
        &mut self,
        backend: usize,
        server: usize,
        client: SocketAddr,
    ) -> (u64, Option<rustls::pki_types::ServerName<'static>>) {
        let dynamic = self.ctx.config.backends[backend].servers[server]
            .ssl
            .as_deref()
            .is_some_and(|t| t.dynamic_sni);
        if !dynamic {
            return (0, None);
        }
        let facts = Facts {
            ctx: self.ctx,
            frontend: self.frontend,
            client,
            local: self.local,
            tls: self.tls,
        };
        let mut buf = std::mem::take(&mut self.sni_buf);
        let name = if self.rules.server_sni(&facts, (backend, server), &mut buf) {
            std::str::from_utf8(&buf)
                .ok()
                .filter(|s| !s.is_empty())
                .and_then(|s| rustls::pki_types::ServerName::try_from(s.to_string()).ok())
        } else {
            None
        };
        let tag = match &name {
            Some(_) => {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                buf.hash(&mut h);
                h.finish() | 1
            }
            None => 0,
        };
        self.sni_buf = buf;
        (tag, name)
    }

    /// Keeps a server connection whose exchange ended cleanly for the next
    /// request: this client's own (`http-reuse never`) or the shard's pool.
    fn park(&mut self, backend: usize, server: usize, sock: ServerConn) {
        if self.private_only(backend, server) {
            self.private = Some((backend, server, self.server_tag, sock));
        } else {
            self.ctx.idle.put(backend, server, self.server_tag, sock);
        }
    }
}

mod body;
mod duplex;
mod io;
mod reply;
pub(crate) mod route;
mod rules;
mod server_tls;
