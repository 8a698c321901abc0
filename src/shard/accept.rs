//! The accept loop of one listener on one shard. A multishot accept is armed only
//! while `global.maxconn` and the frontend's `maxconn` leave room; every accepted
//! connection must then take a permit before it is served. When none is left, the
//! accept is cancelled and the few connections the kernel handed over meanwhile are
//! held, unserved, in order; the rest wait in the kernel's backlog. None are
//! refused: they are served as soon as a session ends on any shard. No permit is
//! reserved ahead, so an idle shard never keeps a place another shard could use.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use super::connect::is_local_exhaustion;
use super::ctx::ShardCtx;
use super::limits::Permit;
use super::session;
use crate::log::level;
use crate::ring;
use crate::sys::socket::Socket;

pub async fn accept_loop(ctx: Rc<ShardCtx>, frontend: usize, bind: usize, listener: Socket) {
    let fd = listener.as_raw_fd();
    // `bind … accept-proxy`: every connection starts with a PROXY header.
    let accept_proxy = ctx.config.frontends[frontend]
        .binds
        .get(bind)
        .is_some_and(|b| b.accept_proxy);
    // Fault injection for the test suite (debug builds only): this shard panics
    // on its first connection, as a shard would on a bug.
    let inject_panic = cfg!(debug_assertions)
        && std::env::var("RINGLB_TEST_PANIC_SHARD")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            == Some(ctx.id);
    let stop_slot = {
        let mut w = ctx.accept_wakers.borrow_mut();
        w.push(None);
        w.len() - 1
    };
    // Connections accepted in the race between "no permit left" and the cancel
    // taking effect: served, in order, before accepting again.
    let mut held: VecDeque<OwnedFd> = VecDeque::new();
    'outer: loop {
        while let Some(conn) = held.pop_front() {
            let Some(permit) = ctx.permit(frontend).await else {
                break 'outer;
            };
            spawn_session(&ctx, frontend, bind, conn, permit, accept_proxy);
        }
        if !ctx.room(frontend).await {
            break;
        }
        let mut acc = ring::accept_multi(fd);
        loop {
            if ctx.stopping.get() {
                acc.cancel();
            }
            let next = if acc.is_cancelled() {
                Some(acc.next().await)
            } else {
                // Wake up on stop, too, so a quiet listener is closed promptly,
                // and now and then to look at the queue ourselves (`RECHECK`).
                let deadline = ctx
                    .shared
                    .recheck_accept_until
                    .get()
                    .filter(|until| Instant::now() < **until)
                    .map(|_| Instant::now() + RECHECK);
                match stop_or(&ctx, stop_slot, ring::with_deadline(deadline, acc.next())).await {
                    Some(Some(n)) => Some(n),
                    Some(None) => {
                        while let Ok(Some(conn)) = listener.accept_now() {
                            match ctx.try_permit(frontend) {
                                Some(p) if held.is_empty() => {
                                    spawn_session(&ctx, frontend, bind, conn, p, accept_proxy)
                                }
                                other => {
                                    drop(other);
                                    held.push_back(conn);
                                    acc.cancel();
                                    break;
                                }
                            }
                        }
                        continue;
                    }
                    None => None,
                }
            };
            match next {
                Some(Some(Ok(_))) if inject_panic => {
                    panic!("injected fault (RINGLB_TEST_PANIC_SHARD={})", ctx.id)
                }
                Some(Some(Ok(conn))) => match ctx.try_permit(frontend) {
                    Some(p) if held.is_empty() => {
                        spawn_session(&ctx, frontend, bind, conn, p, accept_proxy)
                    }
                    other => {
                        drop(other);
                        held.push_back(conn);
                        acc.cancel();
                    }
                },
                Some(Some(Err(e))) => {
                    ctx.shared.frontends[frontend]
                        .accept_errors
                        .fetch_add(1, Ordering::Relaxed);
                    // Out of fds or memory: say so (rate-limited) and back off
                    // briefly rather than spin; accepting resumes by itself.
                    // ECONNABORTED and the like are the client's business.
                    if is_local_exhaustion(&e) {
                        if ctx.shared.local_exhaustion() {
                            ctx.logger.event(
                                level::ALERT,
                                format!(
                                    "Proxy {} cannot accept a connection: {e} (the process \
                                     reached its fd or memory limit; check 'ulimit -n' and maxconn).",
                                    ctx.config.frontends[frontend].name
                                ),
                            );
                        }
                        ring::sleep_until(Instant::now() + Duration::from_millis(100)).await;
                    }
                }
                Some(None) => break,
                None => acc.cancel(),
            }
        }
        if ctx.stopping.get() {
            break;
        }
    }
    // Connections accepted but never served when stopping are closed on drop.
    drop(held);
    if ctx.stopping.get() && !ctx.killed.get() {
        sweep(&ctx, frontend, bind, &listener, accept_proxy);
    }
    drop(listener);
}

/// How often an armed accept also looks at its listener's queue itself. A
/// listener shared with another process (the predecessor during a reload:
/// `-x`, master-worker) may see the kernel hand a connection's wake-up to the
/// other process's accept as it is being cancelled (io_uring's accept waits
/// as an exclusive waiter, so nobody else is woken); without a look now and
/// then, that connection would wait until the next one arrives. One
/// non-blocking `accept4` per listener per interval, only for a while after a
/// hand-over (`Shared::recheck_accept_until`): a shard that took over nothing
/// never wakes for it.
const RECHECK: Duration = Duration::from_millis(25);

/// Most connections one final sweep takes (a listener under a flood must not
/// keep a stopping shard accepting).
const SWEEP_MAX: usize = 1024;

/// Serves what is left in the listener's queue once its accept is cancelled.
/// The socket may live on in a successor (`-x`, master-worker): io_uring arms
/// an accept as an *exclusive* waiter, so a connection whose wake-up reached
/// our accept while it was being cancelled wakes nobody else, and would wait in
/// the queue until the next connection arrives. Our waiter is gone now, so
/// anything that arrives later wakes the successor; what came before is taken
/// here and served like any session of the drain.
fn sweep(ctx: &Rc<ShardCtx>, frontend: usize, bind: usize, listener: &Socket, accept_proxy: bool) {
    for _ in 0..SWEEP_MAX {
        let Ok(Some(conn)) = listener.accept_now() else {
            return;
        };
        match ctx.try_permit(frontend) {
            Some(p) => spawn_session(ctx, frontend, bind, conn, p, accept_proxy),
            // At maxconn: closing it now is the same fate as a full queue.
            None => return,
        }
    }
}

/// Runs `fut`, or returns `None` as soon as the shard starts stopping.
async fn stop_or<F: std::future::Future>(ctx: &ShardCtx, slot: usize, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(v));
        }
        if ctx.stopping.get() {
            return std::task::Poll::Ready(None);
        }
        ctx.accept_wakers.borrow_mut()[slot] = Some(cx.waker().clone());
        std::task::Poll::Pending
    })
    .await
}

fn spawn_session(
    ctx: &Rc<ShardCtx>,
    frontend: usize,
    bind: usize,
    conn: OwnedFd,
    permit: Permit,
    accept_proxy: bool,
) {
    let client = Socket::from(conn);
    let ctx = ctx.clone();
    ctx.session_started();
    ring::spawn(async move {
        session::run(ctx.clone(), frontend, bind, client, permit, accept_proxy).await;
        ctx.session_ended();
    });
}
