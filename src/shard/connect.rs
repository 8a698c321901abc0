//! Connecting a session to a server: take a slot (or queue for one), connect
//! with `timeout connect`, and on failure retry, pause or redispatch as HAProxy
//! 2.6 does. Shared by every mode: L4 today, HTTP next, TLS on top.
//!
//! Faults are told apart: a refused or timed-out connect is the server's
//! (counted on it, retried), while running out of fds, memory or source ports
//! is the proxy's own (`R` in the termination state, counted on the backend,
//! never held against the server, never retried as a refusal).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::ctx::ShardCtx;
use super::dispatch::ServerSlot;
use crate::balance::HashKey;
use crate::config::model::Balance;
use crate::log::Termination;
use crate::ring::{self, events};
use crate::sys::socket::Socket;

/// Why one connect attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The server refused or reset (an errno from the kernel), or `connect`
    /// failed for a reason that is the server's or the network's.
    Refused(io::Error),
    /// `timeout connect` expired.
    Timeout,
    /// The proxy ran out of something: fds, memory, buffers, source ports.
    Local(io::Error),
}

/// errnos that mean the proxy, not the server, is out of resources
/// (HAProxy's `SF_ERR_RESOURCE`).
pub fn is_local_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

/// One non-blocking connect, completed through the ring.
pub async fn connect(addr: SocketAddr, timeout: Option<Duration>) -> Result<Socket, ConnectError> {
    let (sock, in_progress) = Socket::connect(&addr).map_err(|e| {
        if is_local_exhaustion(&e) {
            ConnectError::Local(e)
        } else {
            ConnectError::Refused(e)
        }
    })?;
    if !in_progress {
        return Ok(sock);
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    match ring::with_deadline(deadline, ring::poll_once(sock.as_raw_fd(), events::OUT)).await {
        None => Err(ConnectError::Timeout),
        Some(Err(e)) => Err(if is_local_exhaustion(&e) {
            ConnectError::Local(e)
        } else {
            ConnectError::Refused(e)
        }),
        // A failed connect always reports POLLERR (and POLLHUP once reset), so
        // a plain POLLOUT is a connection: no `SO_ERROR` read on the fast path.
        Some(Ok(ev)) if ev & (events::ERR | events::HUP) == 0 => Ok(sock),
        Some(Ok(_)) => Err(ConnectError::Refused(
            sock.take_error()
                .ok()
                .flatten()
                .unwrap_or_else(|| io::Error::from_raw_os_error(libc::ECONNREFUSED)),
        )),
    }
}

/// What connecting left for the session's log line.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectInfo {
    /// The last server tried.
    pub server: Option<usize>,
    pub retries: u32,
    /// A retry went to another server (`+` before the retries in the log).
    pub redispatched: bool,
    /// Time queued, ms (-1: never got a slot).
    pub tw_ms: i64,
    /// Time connecting, ms (-1: never connected).
    pub tc_ms: i64,
    /// Sessions queued on the backend when this one arrived.
    pub backend_queue: u32,
}

impl ConnectInfo {
    pub fn new() -> ConnectInfo {
        ConnectInfo {
            tw_ms: -1,
            tc_ms: -1,
            ..Default::default()
        }
    }
}

/// Takes a slot on a server of `backend` and connects to it, retrying and
/// redispatching as HAProxy does; on success the session owns both.
pub async fn connect_server(
    ctx: &Rc<ShardCtx>,
    backend: usize,
    key: HashKey<'_>,
    t0: Instant,
    info: &mut ConnectInfo,
) -> Result<(ServerSlot, Socket), Termination> {
    let shared = &ctx.shared.backends[backend];
    shared.total.fetch_add(1, Ordering::Relaxed);
    info.backend_queue = shared.queued.0.load(Ordering::Relaxed);
    let slot = ctx.obtain(backend, key, None).await?;
    info.tw_ms = t0.elapsed().as_millis() as i64;
    connect_slot(ctx, backend, key, slot, info).await
}

/// Connects to the server of `slot` (already taken), retrying and
/// redispatching as HAProxy does. HTTP calls it when no idle pooled
/// connection to that server could be reused.
pub async fn connect_slot(
    ctx: &Rc<ShardCtx>,
    backend: usize,
    key: HashKey<'_>,
    mut slot: ServerSlot,
    info: &mut ConnectInfo,
) -> Result<(ServerSlot, Socket), Termination> {
    let be = &ctx.config.backends[backend];
    let shared = &ctx.shared.backends[backend];
    let mut retries_left = be.retries;
    loop {
        info.server = Some(slot.server);
        let t_connect = Instant::now();
        let err = match connect(ctx.server_addr(backend, slot.server), be.timeouts.connect).await {
            Ok(sock) => {
                info.tc_ms = t_connect.elapsed().as_millis() as i64;
                return Ok((slot, sock));
            }
            Err(ConnectError::Local(e)) => {
                shared.local_errors.fetch_add(1, Ordering::Relaxed);
                if ctx.shared.local_exhaustion() {
                    ctx.logger.event(
                        crate::log::level::ALERT,
                        format!(
                            "Proxy {} cannot connect to a server: {e} (the process is out of \
                             fds, memory or source ports; check 'ulimit -n' and maxconn).",
                            be.name
                        ),
                    );
                }
                return Err(Termination::LOCAL_RESOURCE);
            }
            Err(e) => e,
        };
        let counters = &shared.servers[slot.server];
        counters.connect_errors.fetch_add(1, Ordering::Relaxed);
        if retries_left == 0 {
            return Err(match err {
                ConnectError::Timeout => Termination::CONNECT_TIMEOUT,
                _ => Termination::CONNECT_REFUSED,
            });
        }
        retries_left -= 1;
        info.retries += 1;
        counters.retries.fetch_add(1, Ordering::Relaxed);
        if be.redispatch && redispatch_now(ctx, backend, slot.server, retries_left) {
            counters.redispatches.fetch_add(1, Ordering::Relaxed);
            info.redispatched = true;
            let from = slot.server;
            drop(slot);
            slot = ctx.obtain(backend, key, Some(from)).await?;
        } else if matches!(err, ConnectError::Refused(_)) {
            // HAProxy's turn-around timer before retrying the same server
            // (not after a timeout, which has waited long enough).
            let pause = be
                .timeouts
                .connect
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            ring::sleep_until(Instant::now() + pause).await;
        }
    }
}

/// HAProxy 2.6 (`back_handle_st_cer`) with `option redispatch`: go elsewhere at
/// once when the server is no longer usable, on the last retry, or whenever
/// the choice is not deterministic anyway (not hash-based, more than one usable
/// active server).
fn redispatch_now(ctx: &ShardCtx, backend: usize, server: usize, retries_left: u32) -> bool {
    let be = &ctx.config.backends[backend];
    let hash_based = matches!(
        be.balance,
        Balance::Source | Balance::Uri | Balance::UrlParam | Balance::Hdr
    );
    !ctx.replica(backend, server).usable()
        || retries_left == 0
        || (!hash_based && ctx.usable_active_servers(backend) > 1)
}
