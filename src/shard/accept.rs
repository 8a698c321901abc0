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

use super::ctx::{Permit, ShardCtx};
use super::session;
use crate::ring;
use crate::sys::socket::Socket;

pub async fn accept_loop(ctx: Rc<ShardCtx>, frontend: usize, listener: Socket) {
    let fd = listener.as_raw_fd();
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
            spawn_session(&ctx, frontend, conn, permit);
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
                Some(Some(Ok(conn))) => match ctx.try_permit(frontend) {
                    Some(p) if held.is_empty() => spawn_session(&ctx, frontend, conn, p),
                    other => {
                        drop(other);
                        held.push_back(conn);
                        acc.cancel();
                    }
                },
                Some(Some(Err(e))) => {
                    // Out of fds or memory: back off briefly rather than spin.
                    // ECONNABORTED and the like are the client's business.
                    let scarce = [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM];
                    if e.raw_os_error().is_some_and(|c| scarce.contains(&c)) {
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

fn spawn_session(ctx: &Rc<ShardCtx>, frontend: usize, conn: OwnedFd, permit: Permit) {
    let client = Socket::from(conn);
    let ctx = ctx.clone();
    ctx.session_started();
    ring::spawn(async move {
        session::run(ctx.clone(), frontend, client, permit).await;
        ctx.session_ended();
    });
}
