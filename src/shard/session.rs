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
use crate::l4::KillSwitch;
use crate::log::{SessionRecord, Termination};
use crate::sys::socket::Socket;

pub async fn run(ctx: Rc<ShardCtx>, frontend: usize, client: Socket, permit: Permit) {
    let accept_time = SystemTime::now();
    let t0 = Instant::now();
    let fe = &ctx.config.frontends[frontend];
    // The client's address costs a syscall; only its log line, `balance
    // source` and `X-Forwarded-For` read it. (TCP_NODELAY comes from the listener.)
    let unknown = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let wants_addr = ctx.logger.logs_frontend(frontend)
        || (fe.mode == Mode::Http
            && (fe.forwardfor || fe.rules.get().is_some_and(|r| !r.use_backend.is_empty())))
        || fe
            .default_backend
            .is_some_and(|b| ctx.config.backends[b].balance.hashes_client());
    let client_addr = if wants_addr {
        client.peer_addr().unwrap_or(unknown)
    } else {
        unknown
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
    };
    let kill = Rc::new(KillSwitch::default());
    let live = ctx.live.register(fe.default_backend, kill.clone());
    if fe.mode == Mode::Http {
        // One log line per request, written by the HTTP session itself.
        // The kill switch is watched request by request inside, so a killed
        // request still gets its log line.
        http::serve(&ctx, frontend, &client, &report, t0, &live, &kill).await;
        drop(live);
        drop(client);
        drop(permit);
        return;
    }
    report.termination = tcp::serve(&ctx, frontend, &client, &mut report, t0, &live, &kill).await;
    drop(live);
    report.tt_ms = t0.elapsed().as_millis() as i64;
    drop(client);
    // Like HAProxy, the connection counts are those at log time.
    report.actconn = ctx.shared.actconn.get();
    report.feconn = ctx.shared.frontends[frontend].active.get();
    drop(permit);
    ctx.account(&report, None);
    ctx.logger.session(report);
}
