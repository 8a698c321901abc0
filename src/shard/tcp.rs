//! A TCP-mode session: pick the backend, connect to a server (queue, retries,
//! redispatch: `connect::connect_server`), then forward both ways with the L4
//! pump until the session ends; say how it ended in HAProxy's terms.

use std::rc::Rc;
use std::time::Instant;

use super::connect::{connect_server, ConnectInfo};
use super::ctx::ShardCtx;
use super::live::LiveKey;
use crate::balance::HashKey;
use crate::config::model::ProxyProtocol;
use crate::l4::proxy;
use crate::l4::{KillSwitch, Pump, PumpEnd, PumpLimits, RingOutcome, RingPump, Transport};
use crate::log::{SessionRecord, Termination};
use crate::ring::{self, events};
use crate::sys::socket::Socket;

/// Writes all of `bytes` to a fresh connection (a PROXY header: it fits the
/// socket buffer, so this almost never waits), bounded by `timeout`.
async fn send_all(
    sock: &Socket,
    mut bytes: &[u8],
    timeout: Option<std::time::Duration>,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    while !bytes.is_empty() {
        match sock.send(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                match ring::with_deadline(deadline, ring::poll_once(sock.as_raw_fd(), events::OUT))
                    .await
                {
                    None => return Err(std::io::ErrorKind::TimedOut.into()),
                    Some(r) => {
                        r?;
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Serves one TCP session; returns how it ended. `sock` is the client's
/// socket under `client` (the transport: that socket, or TLS over it); `plain`
/// when they are one and the same, and only then may the session start on the
/// ring copy path; `backend`: where the frontend's routing sent it.
#[allow(clippy::too_many_arguments)]
pub async fn serve<C: Transport>(
    ctx: &Rc<ShardCtx>,
    frontend: usize,
    client: &C,
    sock: &Socket,
    plain: bool,
    backend: Option<usize>,
    report: &mut SessionRecord,
    t0: Instant,
    live: &LiveKey<'_>,
    kill: &Rc<KillSwitch>,
) -> Termination {
    let fe = &ctx.config.frontends[frontend];
    let Some(backend) = backend else {
        return Termination::NO_SERVER;
    };
    let be = &ctx.config.backends[backend];
    let key = if be.balance.hashes_client() {
        HashKey::Addr(report.client.ip())
    } else {
        HashKey::None
    };
    let mut info = ConnectInfo::new();
    let connected = kill
        .guard(connect_server(ctx, backend, key, t0, &mut info))
        .await;
    report.server = info.server;
    report.retries = info.retries;
    report.redispatched = info.redispatched;
    report.tw_ms = info.tw_ms;
    report.tc_ms = info.tc_ms;
    report.backend_queue = info.backend_queue;
    let (slot, server_sock) = match connected {
        Some(Ok(c)) => c,
        Some(Err(t)) => return t,
        // Killed (hard stop) while queued or connecting.
        None if info.tw_ms < 0 => return Termination::HARD_STOP_QUEUED,
        None => return Termination::HARD_STOP_CONNECTING,
    };
    let server = slot.server;
    live.set_server(Some(server));
    // `send-proxy` / `send-proxy-v2`: the client's addresses go first.
    if let Some(v) = be.servers[server].send_proxy {
        let dst = sock.local_addr().unwrap_or(report.client);
        let hdr = match v {
            ProxyProtocol::V1 => proxy::v1(report.client, dst),
            ProxyProtocol::V2 => proxy::v2(report.client, dst),
        };
        if let Err(e) = send_all(&server_sock, &hdr, be.timeouts.server).await {
            report.server = Some(server);
            return if crate::shard::connect::is_local_exhaustion(&e) {
                Termination::LOCAL_RESOURCE
            } else {
                Termination::SERVER_ABORT
            };
        }
    }
    // `server ... ssl`: the TLS handshake with the server counts as connecting
    // (bounded by `timeout connect`); a failed one is a connection error (SC).
    let server_sock = match be.servers[server].ssl.as_ref() {
        None => Peer::Plain(server_sock),
        Some(tls) => {
            let deadline = be
                .timeouts
                .connect
                .and_then(|t| Instant::now().checked_add(t));
            let hs =
                crate::tls::connect(tls.config.clone(), tls.sni.clone(), server_sock, deadline);
            match kill.guard(hs).await {
                Some(Ok(t)) => Peer::Tls(Box::new(t)),
                Some(Err((_, e))) => {
                    ctx.logger.event(
                        crate::log::level::WARNING,
                        format!("{}/{}: {e}", be.name, be.servers[server].name),
                    );
                    return Termination::CONNECT_REFUSED;
                }
                None => return Termination::HARD_STOP_CONNECTING,
            }
        }
    };
    let limits = PumpLimits {
        client: fe.timeouts.client,
        server: be.timeouts.server,
        client_fin: fe.timeouts.client_fin,
        server_fin: be.timeouts.server_fin,
        tunnel: be.timeouts.tunnel.or(fe.timeouts.tunnel),
        splice: ctx.config.global.tune.splice,
    };
    // Small messages on the ring; bulk (or a dry buffer ring) moves on to the
    // poll + splice pump, with every byte received so far already sent.
    let (mut up, mut down) = (0, 0);
    let mut ring_end = None;
    let plain_pair = match &server_sock {
        Peer::Plain(s) if plain && ctx.ring_copy.get() => Some((sock, s)),
        _ => None,
    };
    if let Some((plain, server_sock)) = plain_pair {
        let r = RingPump::run(plain, server_sock, limits, kill.clone()).await;
        (up, down) = (r.up, r.down);
        ctx.ring_bytes.set(ctx.ring_bytes.get() + up + down);
        if let RingOutcome::Ended(end) = r.outcome {
            ring_end = Some(end);
        }
    }
    let end = match ring_end {
        Some(end) => end,
        None => {
            let res = match &server_sock {
                Peer::Plain(s) => Pump::run(client, s, &ctx.pools, limits, kill.clone()).await,
                Peer::Tls(t) => Pump::run(client, &**t, &ctx.pools, limits, kill.clone()).await,
            };
            up += res.up;
            down += res.down;
            ctx.poll_bytes.set(ctx.poll_bytes.get() + res.up + res.down);
            res.end
        }
    };
    report.bytes_up = up;
    report.bytes_down = down;
    drop(server_sock);
    drop(slot);
    report.beconn = ctx.shared.backends[backend].active.get();
    report.srv_conn = ctx.shared.backends[backend].servers[server].active.get();
    match end {
        PumpEnd::Closed => Termination::NORMAL,
        PumpEnd::ClientTimeout => Termination::CLIENT_TIMEOUT,
        PumpEnd::ServerTimeout => Termination::SERVER_TIMEOUT,
        PumpEnd::ClientAborted => Termination::CLIENT_ABORT,
        PumpEnd::ServerAborted => Termination::SERVER_ABORT,
        PumpEnd::Local => {
            ctx.shared.local_exhaustion();
            Termination::LOCAL_DATA
        }
        // `K`: hard-stop-after or an operator; `D`: the server went down.
        PumpEnd::Killed if ctx.killed.get() || kill.by_operator() => Termination::HARD_STOP_KILL,
        PumpEnd::Killed => Termination::SERVER_DOWN_KILL,
    }
}

/// The server side of a session.
enum Peer {
    Plain(Socket),
    Tls(Box<crate::tls::TlsTransport>),
}
