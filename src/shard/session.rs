//! One TCP session from accept to log line: choose a server (or queue for one),
//! connect with retries and redispatch, pump bytes, then count and log. The
//! `await` points are the session's states; the close/count/log path is written
//! once, at the end of `run`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::ctx::{Dispatch, Permit, ServerSlot, ShardCtx};
use crate::l4::{KillSwitch, Pump, PumpEnd, PumpLimits};
use crate::log::{SessionRecord, Termination};
use crate::ring::{self, events};
use crate::sys::socket::Socket;

enum ConnectError {
    Refused,
    Timeout,
}

async fn connect(addr: SocketAddr, timeout: Option<Duration>) -> Result<Socket, ConnectError> {
    let (sock, in_progress) = Socket::connect(&addr).map_err(|_| ConnectError::Refused)?;
    if !in_progress {
        return Ok(sock);
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    match ring::with_deadline(deadline, ring::poll_once(sock.as_raw_fd(), events::OUT)).await {
        None => Err(ConnectError::Timeout),
        Some(Err(_)) => Err(ConnectError::Refused),
        // A failed connect always reports POLLERR (and POLLHUP once reset), so
        // a plain POLLOUT is a connection: no `SO_ERROR` read on the fast path.
        Some(Ok(ev)) if ev & (events::ERR | events::HUP) == 0 => Ok(sock),
        Some(Ok(_)) => Err(ConnectError::Refused),
    }
}

/// Gets a server slot, waiting in the backend queue if every server is full.
async fn obtain(
    ctx: &Rc<ShardCtx>,
    backend: usize,
    client: IpAddr,
    exclude: Option<usize>,
) -> Result<ServerSlot, Termination> {
    match ctx.dispatch(backend, client, exclude) {
        Dispatch::Slot(s) => Ok(s),
        Dispatch::NoServer => Err(Termination::NO_SERVER),
        Dispatch::QueueFull => Err(Termination::QUEUE_FULL),
        Dispatch::Queued(ticket) => {
            let t = ctx.config.backends[backend].timeouts;
            // HAProxy: without `timeout queue`, `timeout connect` bounds the wait.
            let limit = t.queue.or(t.connect);
            let deadline = limit.map(|l| Instant::now() + l);
            let wait = std::future::poll_fn(|cx| match ticket.granted.get() {
                Some(s) => std::task::Poll::Ready(s),
                None => {
                    *ticket.waker.borrow_mut() = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            });
            match ring::with_deadline(deadline, wait).await {
                Some(server) => Ok(ctx.slot_from_ticket(backend, server)),
                None => {
                    ctx.cancel_ticket(backend, &ticket);
                    if let Some(server) = ticket.granted.get() {
                        // Granted in the same instant the timer fired: take it.
                        return Ok(ctx.slot_from_ticket(backend, server));
                    }
                    ctx.shared.backends[backend]
                        .queue_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    Err(Termination::QUEUE_TIMEOUT)
                }
            }
        }
    }
}

pub async fn run(ctx: Rc<ShardCtx>, frontend: usize, client: Socket, permit: Permit) {
    let accept_time = SystemTime::now();
    let t0 = Instant::now();
    let fe = &ctx.config.frontends[frontend];
    // The client's address costs a syscall; only its log line and `balance
    // source` read it. (TCP_NODELAY comes from the listener.)
    let unknown = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let wants_addr = ctx.logger.logs_frontend(frontend)
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
        actconn: ctx.shared.actconn.get(),
        feconn: ctx.shared.frontends[frontend].active.get(),
        beconn: 0,
        srv_conn: 0,
        srv_queue: 0,
        backend_queue: 0,
    };
    if let Some(backend) = fe.default_backend {
        report.termination = serve(&ctx, frontend, backend, &client, &mut report, t0).await;
    } else {
        report.termination = Termination::NO_SERVER;
    }
    report.tt_ms = t0.elapsed().as_millis() as i64;
    drop(client);
    // Like HAProxy, the connection counts are those at log time.
    report.actconn = ctx.shared.actconn.get();
    report.feconn = ctx.shared.frontends[frontend].active.get();
    drop(permit);
    ctx.logger.session(report);
}

/// Connects and pumps; returns how the session ended.
async fn serve(
    ctx: &Rc<ShardCtx>,
    frontend: usize,
    backend: usize,
    client: &Socket,
    report: &mut SessionRecord,
    t0: Instant,
) -> Termination {
    let be = &ctx.config.backends[backend];
    let ip = report.client.ip();
    ctx.shared.backends[backend]
        .total
        .fetch_add(1, Ordering::Relaxed);
    report.backend_queue = ctx.shared.backends[backend]
        .queued
        .0
        .load(Ordering::Relaxed);
    let mut slot = match obtain(ctx, backend, ip, None).await {
        Ok(s) => s,
        Err(t) => return t,
    };
    report.tw_ms = t0.elapsed().as_millis() as i64;
    let mut retries_left = be.retries;
    let server_sock = loop {
        let srv = &be.servers[slot.server];
        report.server = Some(slot.server);
        let t_connect = Instant::now();
        match connect(srv.addr, be.timeouts.connect).await {
            Ok(sock) => {
                report.tc_ms = t_connect.elapsed().as_millis() as i64;
                break sock;
            }
            Err(e) => {
                let counters = &ctx.shared.backends[backend].servers[slot.server];
                counters.connect_errors.fetch_add(1, Ordering::Relaxed);
                if retries_left == 0 {
                    return match e {
                        ConnectError::Refused => Termination::CONNECT_REFUSED,
                        ConnectError::Timeout => Termination::CONNECT_TIMEOUT,
                    };
                }
                retries_left -= 1;
                report.retries += 1;
                counters.retries.fetch_add(1, Ordering::Relaxed);
                if retries_left == 0 && be.redispatch {
                    // HAProxy's default `option redispatch`: the last retry goes
                    // to another server.
                    counters.redispatches.fetch_add(1, Ordering::Relaxed);
                    let from = slot.server;
                    drop(slot);
                    slot = match obtain(ctx, backend, ip, Some(from)).await {
                        Ok(s) => s,
                        Err(t) => return t,
                    };
                } else if matches!(e, ConnectError::Refused) {
                    // HAProxy's turn-around timer before retrying the same server.
                    let pause = be
                        .timeouts
                        .connect
                        .unwrap_or(Duration::from_secs(1))
                        .min(Duration::from_secs(1));
                    ring::sleep_until(Instant::now() + pause).await;
                }
            }
        }
    };
    let server = slot.server;
    let fe = &ctx.config.frontends[frontend];
    let limits = PumpLimits {
        client: fe.timeouts.client,
        server: be.timeouts.server,
        client_fin: fe.timeouts.client_fin,
        server_fin: be.timeouts.server_fin,
        tunnel: be.timeouts.tunnel.or(fe.timeouts.tunnel),
        splice: ctx.config.global.tune.splice,
    };
    let kill = Rc::new(KillSwitch::default());
    let live = ctx.register_live(backend, server, kill.clone());
    let res = Pump::run(client, &server_sock, &ctx.pools, limits, kill).await;
    ctx.unregister_live(live);
    report.bytes_up = res.up;
    report.bytes_down = res.down;
    drop(server_sock);
    drop(slot);
    report.beconn = ctx.shared.backends[backend].active.get();
    report.srv_conn = ctx.shared.backends[backend].servers[server].active.get();
    match res.end {
        PumpEnd::Closed => Termination::NORMAL,
        PumpEnd::ClientTimeout => Termination::CLIENT_TIMEOUT,
        PumpEnd::ServerTimeout => Termination::SERVER_TIMEOUT,
        PumpEnd::ClientAborted => Termination::CLIENT_ABORT,
        PumpEnd::ServerAborted => Termination::SERVER_ABORT,
        PumpEnd::Killed => {
            if ctx.stopping.get() {
                Termination::HARD_STOP_KILL
            } else {
                Termination::SERVER_DOWN_KILL
            }
        }
    }
}
