//! The accept loop of one listener on one shard. It holds a spare permit before
//! arming a multishot accept, so every connection the kernel hands over is already
//! within `global.maxconn` and the frontend's `maxconn`. When no permit can be had,
//! the accept is cancelled and connections wait in the kernel's backlog — none are
//! refused — until a session ends anywhere and frees a place.

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
        let Some(first) = ctx.permit(frontend).await else { break };
        let mut spare = Some(first);
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
                Some(Some(Ok(conn))) => {
                    let permit = spare.take().or_else(|| ctx.try_permit(frontend));
                    match permit {
                        Some(p) => spawn_session(&ctx, frontend, conn, p),
                        None => held.push_back(conn),
                    }
                    if spare.is_none() {
                        spare = ctx.try_permit(frontend);
                        if spare.is_none() {
                            acc.cancel();
                        }
                    }
                }
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
        drop(spare);
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
