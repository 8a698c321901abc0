//! Where every session starts: the one place that dispatches on the frontend's
//! mode (TCP or HTTP; TLS wraps in here next), registers the session so it
//! can be killed in any state, and writes its log line once it has ended.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use super::ctx::ShardCtx;
use super::http;
use super::limits::Permit;
use super::tcp;
use crate::config::model::Mode;
use crate::l4::proxy::{self, Addresses};
use crate::l4::KillSwitch;
use crate::log::{SessionRecord, Termination};
use crate::ring::{self, events};
use crate::sys::socket::Socket;

/// The client as the mode's session sees it.
enum Client {
    Plain(Socket),
    Tls(Box<crate::tls::TlsTransport>),
}

/// Reads and consumes a PROXY header (v1 or v2) from a new connection, bounded
/// by `timeout client`; `Some` addresses it carried (`None` for LOCAL/UNKNOWN).
async fn read_proxy_header(
    client: &Socket,
    timeout: Option<std::time::Duration>,
) -> Result<Option<Addresses>, String> {
    use std::os::fd::AsRawFd;
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut buf = [0u8; 1040];
    let mut raised = false;
    loop {
        // Peek, so not a byte past the header is taken from the stream.
        let n = match client.peek(&mut buf) {
            Ok(0) => return Err("closed before a PROXY header".into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(format!("reading the PROXY header: {e}")),
        };
        if n > 0 {
            match proxy::parse(&buf[..n]) {
                Ok(Some((addrs, len))) => {
                    if raised {
                        let _ = client.set_rcvlowat(1);
                    }
                    let mut sink = [0u8; 1040];
                    let got = client
                        .recv(&mut sink[..len])
                        .map_err(|e| format!("reading the PROXY header: {e}"))?;
                    if got != len {
                        return Err("PROXY header cut short".into());
                    }
                    return Ok(match addrs {
                        Addresses::Local => None,
                        a => Some(a),
                    });
                }
                Ok(None) if n == buf.len() => return Err("PROXY header too long".into()),
                // Part of a header: be woken only when more than that is waiting.
                Ok(None) => {
                    let _ = client.set_rcvlowat(n + 1);
                    raised = true;
                }
                Err(proxy::ProxyError::NotProxy) => {
                    return Err(
                        "received something which does not look like a PROXY protocol header"
                            .into(),
                    )
                }
                Err(proxy::ProxyError::Invalid(why)) => {
                    return Err(format!("bad PROXY header: {why}"))
                }
            }
        }
        match ring::with_deadline(deadline, ring::poll_once(client.as_raw_fd(), events::IN)).await {
            None => return Err("timeout waiting for the PROXY header".into()),
            Some(Err(e)) => return Err(format!("reading the PROXY header: {e}")),
            Some(Ok(_)) => {}
        }
    }
}

pub async fn run(
    ctx: Rc<ShardCtx>,
    frontend: usize,
    bind: usize,
    client: Socket,
    permit: Permit,
    accept_proxy: bool,
) {
    let accept_time = SystemTime::now();
    let t0 = Instant::now();
    let fe = &ctx.config.frontends[frontend];
    // `accept-proxy`: the real client is in the PROXY header; a connection
    // without a valid one is closed and counted, nothing forwarded.
    let proxied = if accept_proxy {
        match read_proxy_header(&client, fe.timeouts.client).await {
            Ok(a) => a,
            Err(why) => {
                let c = &ctx.shared.counters[ctx.id].frontends[frontend];
                c.add(&c.req_errors, 1);
                ctx.logger.event(
                    crate::log::level::NOTICE,
                    format!("Proxy {}: connection closed: {why}", fe.name),
                );
                drop(client);
                drop(permit);
                return;
            }
        }
    } else {
        None
    };
    // The client's address costs a syscall; only its log line, `balance
    // source`, `X-Forwarded-For` and `send-proxy` read it. (TCP_NODELAY comes
    // from the listener.)
    let unknown = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let client_addr = match proxied {
        Some(Addresses::Proxied { src, .. }) => src,
        _ if ctx.wants_client_addr[frontend] => client.peer_addr().unwrap_or(unknown),
        _ => unknown,
    };
    let mut report = SessionRecord {
        frontend,
        backend: fe.default_backend,
        server: None,
        client: client_addr,
        accept_time,
        tw_ms: -1,
        tc_ms: -1,
        tt_ms: 0,
        bytes_up: 0,
        bytes_down: 0,
        termination: Termination::NORMAL,
        retries: 0,
        redispatched: false,
        actconn: ctx.shared.actconn.get(),
        feconn: ctx.shared.frontends[frontend].active.get(),
        beconn: 0,
        srv_conn: 0,
        srv_queue: 0,
        backend_queue: 0,
        ssl: None,
    };
    let kill = Rc::new(KillSwitch::default());
    let origin = super::live::Origin {
        frontend,
        client: (!client_addr.ip().is_unspecified()).then_some(client_addr),
        fd: std::os::fd::AsRawFd::as_raw_fd(&client),
        started: t0,
        accepted: accept_time,
    };
    // `origin.fd` is read only by this shard's `describe`, between two awaits:
    // every path below drops `live` before the client socket, or both with
    // no await in between, so the descriptor is open whenever it is read.
    let live = ctx.live.register(origin, fe.default_backend, kill.clone());
    // TLS wraps the client socket in a transport once the handshake is done;
    // the mode's session then runs over that transport.
    let bind_tls = fe.binds.get(bind).and_then(|b| b.tls.as_ref());
    let client = match bind_tls {
        None => Client::Plain(client),
        Some(tls) => {
            let deadline = fe.timeouts.client.and_then(|t| t0.checked_add(t));
            let hs = kill.guard(crate::tls::handshake(tls.server.clone(), client, deadline));
            match hs.await {
                Some(Ok(t)) => Client::Tls(Box::new(t)),
                Some(Err((sock, e))) => {
                    handshake_failed(&ctx, frontend, bind, &sock, report.client, &e);
                    return;
                }
                // Killed (hard stop) mid-handshake: the socket went with it.
                None => return,
            }
        }
    };
    report.termination = match (fe.mode, &client) {
        (Mode::Tcp, Client::Plain(c)) => {
            let backend = match tcp_route(&ctx, frontend, &report, proxied, c, t0, &kill).await {
                Routed::To(b) => b,
                Routed::Rejected => {
                    // Logged `fe/<NOSRV> -1/-1/Tt 0 PR`, as HAProxy logs a
                    // `tcp-request content reject`.
                    let c = &ctx.shared.counters[ctx.id].frontends[frontend];
                    c.add(&c.denied_req, 1);
                    report.backend = None;
                    live.set_backend(None);
                    return finish(
                        &ctx,
                        report,
                        Termination::PROXY_REQUEST,
                        live,
                        client,
                        permit,
                        t0,
                    );
                }
                Routed::Killed => {
                    report.backend = None;
                    return finish(
                        &ctx,
                        report,
                        Termination::HARD_STOP_KILL,
                        live,
                        client,
                        permit,
                        t0,
                    );
                }
            };
            report.backend = backend;
            live.set_backend(backend);
            tcp::serve(
                &ctx,
                frontend,
                c,
                c,
                true,
                backend,
                &mut report,
                t0,
                &live,
                &kill,
            )
            .await
        }
        (Mode::Tcp, Client::Tls(t)) => {
            let info = t.info(bind_tls.and_then(|b| b.client_auth.as_deref()));
            report.ssl = Some((info.version, info.cipher));
            let backend = tcp_backend(&ctx, frontend, &report, proxied, t.socket(), Some(&info));
            report.backend = backend;
            live.set_backend(backend);
            tcp::serve(
                &ctx,
                frontend,
                &**t,
                t.socket(),
                false,
                backend,
                &mut report,
                t0,
                &live,
                &kill,
            )
            .await
        }
        (Mode::Http, Client::Plain(c)) => {
            // One log line per request, written by the HTTP session itself.
            // The kill switch is watched request by request inside, so a killed
            // request still gets its log line.
            http::serve(
                &ctx,
                frontend,
                http::Client::Plain(c),
                &report,
                t0,
                &live,
                &kill,
            )
            .await;
            drop(live);
            drop(client);
            drop(permit);
            return;
        }
        (Mode::Http, Client::Tls(t)) => {
            let info = t.info(bind_tls.and_then(|b| b.client_auth.as_deref()));
            report.ssl = Some((info.version, info.cipher));
            let c = http::Client::Tls(t, &info);
            http::serve(&ctx, frontend, c, &report, t0, &live, &kill).await;
            close_tls(t, fe.timeouts.client).await;
            drop(live);
            drop(client);
            drop(permit);
            return;
        }
    };
    let t = report.termination;
    finish(&ctx, report, t, live, client, permit, t0);
}

/// The end of a mode-tcp session: close, count, log (once, here).
fn finish(
    ctx: &ShardCtx,
    mut report: SessionRecord,
    termination: Termination,
    live: super::live::LiveKey<'_>,
    client: Client,
    permit: Permit,
    t0: Instant,
) {
    report.termination = termination;
    drop(live);
    report.tt_ms = t0.elapsed().as_millis() as i64;
    drop(client);
    // Like HAProxy, the connection counts are those at log time.
    report.actconn = ctx.shared.actconn.get();
    report.feconn = ctx.shared.frontends[report.frontend].active.get();
    drop(permit);
    ctx.account(&report, None);
    ctx.logger.session(report);
}

/// Where a plain mode-tcp session goes, after its `tcp-request content`
/// rules (if any) accepted it.
enum Routed {
    To(Option<usize>),
    Rejected,
    Killed,
}

/// `tcp-request content` (waiting for the client's first bytes, see
/// [`super::inspect`]), then `use_backend` with those bytes available to
/// `req.payload`, `req.ssl_sni`...
async fn tcp_route(
    ctx: &ShardCtx,
    frontend: usize,
    report: &SessionRecord,
    proxied: Option<Addresses>,
    sock: &Socket,
    t0: Instant,
    kill: &KillSwitch,
) -> Routed {
    let fe = &ctx.config.frontends[frontend];
    let Some(rules) = fe.rules.get().filter(|r| !r.tcp_content.is_empty()) else {
        return Routed::To(tcp_backend(ctx, frontend, report, proxied, sock, None));
    };
    let (client, local) = rule_addrs(report, proxied, sock);
    let counters = super::http::route::ShardCounters::new(ctx, frontend, client);
    let conn = crate::http::rules::Conn {
        client,
        local,
        tls: None,
        backend: None,
        counters: &counters,
    };
    let mut txn = crate::http::rules::Txn::default();
    let deadline = fe.tcp_inspect_delay.and_then(|d| t0.checked_add(d));
    let tune = &ctx.config.global.tune;
    match super::inspect::content(rules, sock, &mut txn, &conn, deadline, tune, kill).await {
        super::inspect::Verdict::Accept => {
            Routed::To(rules.route(&mut txn, &conn).or(fe.default_backend))
        }
        super::inspect::Verdict::Reject => Routed::Rejected,
        super::inspect::Verdict::Killed => Routed::Killed,
    }
}

/// The addresses a TCP session's rules see: the client's and the one it
/// connected to (the PROXY header's, when there was one).
fn rule_addrs(
    report: &SessionRecord,
    proxied: Option<Addresses>,
    sock: &Socket,
) -> (SocketAddr, SocketAddr) {
    let client = report.client;
    let local = match proxied {
        Some(Addresses::Proxied { dst, .. }) => dst,
        _ => sock.local_addr().unwrap_or(client),
    };
    (client, local)
}

/// Where a mode-tcp session goes: the first `use-backend` whose condition holds,
/// else the default backend. Evaluated once, when the session starts (after the
/// TLS handshake on an `ssl` bind), as HAProxy does without `tcp-request
/// inspect-delay`: layer-4 facts (`src`, `dst`, `dst_port`, the PROXY header's
/// addresses), the TLS ones (`ssl_fc`, `ssl_fc_sni`, `ssl_c_*`) and the
/// shard's (`nbsrv`, `be_conn`...); a fetch of the HTTP request finds none and
/// does not match.
fn tcp_backend(
    ctx: &ShardCtx,
    frontend: usize,
    report: &SessionRecord,
    proxied: Option<Addresses>,
    sock: &Socket,
    tls: Option<&crate::tls::TlsInfo>,
) -> Option<usize> {
    let fe = &ctx.config.frontends[frontend];
    let Some(rules) = fe.rules.get().filter(|r| !r.use_backend.is_empty()) else {
        return fe.default_backend;
    };
    let (client, local) = rule_addrs(report, proxied, sock);
    let counters = super::http::route::ShardCounters::new(ctx, frontend, client);
    let conn = crate::http::rules::Conn {
        client,
        local,
        tls,
        backend: None,
        counters: &counters,
    };
    let mut txn = crate::http::rules::Txn::default();
    rules.route(&mut txn, &conn).or(fe.default_backend)
}

/// A client that never completed its TLS handshake (garbage instead of a
/// ClientHello, no common version or suite, a stall past `timeout client`):
/// counted as a frontend request error and logged as HAProxy does ("SSL
/// handshake failure"), with no session line.
fn handshake_failed(
    ctx: &ShardCtx,
    frontend: usize,
    bind: usize,
    sock: &Socket,
    client: SocketAddr,
    e: &crate::tls::HandshakeError,
) {
    let fe = &ctx.shared.counters[ctx.id].frontends[frontend];
    fe.add(&fe.req_errors, 1);
    let name = &ctx.config.frontends[frontend].name;
    let addr = &ctx.config.frontends[frontend].binds[bind].addr;
    // The PROXY header's client when there was one, else the socket's peer.
    let peer = if client.ip().is_unspecified() {
        sock.peer_addr()
            .map_or_else(|_| "-".to_string(), |a| a.to_string())
    } else {
        client.to_string()
    };
    ctx.logger.event(
        crate::log::level::NOTICE,
        format!("{peer} [{name}/{addr}]: {e}"),
    );
}

/// Ends a TLS client connection whose HTTP session is over: close_notify
/// and FIN after everything still held, for at most `limit` (a client that
/// stopped reading must not keep the session).
async fn close_tls(t: &crate::tls::TlsTransport, limit: Option<std::time::Duration>) {
    use crate::l4::Transport;
    if t.shutdown_write().is_err() {
        return;
    }
    let end = limit
        .unwrap_or(std::time::Duration::from_secs(1))
        .min(std::time::Duration::from_secs(5));
    let end = Instant::now() + end;
    while t.has_pending_output() {
        match t.flush() {
            Ok(()) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        let room = crate::ring::poll_once(t.fd(), crate::ring::events::OUT);
        if !matches!(
            crate::ring::with_deadline(Some(end), room).await,
            Some(Ok(_))
        ) {
            return;
        }
    }
}
