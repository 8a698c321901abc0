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
                // Wake up on stop, too, so a quiet listener is closed promptly.
                stop_or(&ctx, stop_slot, acc.next()).await
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
    drop(listener);
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
