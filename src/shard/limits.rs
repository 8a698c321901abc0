//! `global.maxconn` and frontend `maxconn` on one shard: a [`Permit`] is a counted
//! place under both, taken before a session is served and released when it ends.
//! The limits are exact across shards (atomics in `Shared`); an accept loop that
//! finds no room registers a waker, and a shard that frees a place wakes the
//! others that wait (through their inboxes).

use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::ctx::ShardCtx;

/// A counted place under `global.maxconn` and the frontend's `maxconn`.
pub struct Permit {
    pub ctx: Rc<ShardCtx>,
    pub frontend: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.ctx.release_permit(self.frontend);
    }
}

impl ShardCtx {
    pub fn try_permit(self: &Rc<Self>, frontend: usize) -> Option<Permit> {
        let g = self.config.global.maxconn;
        let fmax = self.config.frontends[frontend].maxconn;
        if !self.shared.actconn.try_acquire(g) {
            return None;
        }
        if !self.shared.frontends[frontend].active.try_acquire(fmax) {
            self.shared.actconn.release();
            return None;
        }
        let fe = &self.shared.frontends[frontend];
        fe.total.fetch_add(1, Ordering::Relaxed);
        if self.counting {
            self.shared.counters[self.id].frontends[frontend].tick(crate::ring::unix_now_coarse());
        }
        super::dispatch::note_max(&fe.max_active, fe.active.get());
        Some(Permit {
            ctx: self.clone(),
            frontend,
        })
    }

    /// Registers this shard as waiting for a place. Registered before the last
    /// try, so a place freed on any shard in between is never missed.
    fn wait_for_room(&self, cx: &std::task::Context<'_>) {
        self.limit_waiters.borrow_mut().push(cx.waker().clone());
        self.shared
            .limit_waiters
            .0
            .fetch_or(1 << self.id, Ordering::SeqCst);
    }

    /// Waits for a permit; `None` when the shard is stopping.
    pub async fn permit(self: &Rc<Self>, frontend: usize) -> Option<Permit> {
        std::future::poll_fn(|cx| {
            if self.stopping.get() {
                return std::task::Poll::Ready(None);
            }
            if let Some(p) = self.try_permit(frontend) {
                return std::task::Poll::Ready(Some(p));
            }
            self.wait_for_room(cx);
            match self.try_permit(frontend) {
                Some(p) => std::task::Poll::Ready(Some(p)),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }

    fn has_room(&self, frontend: usize) -> bool {
        let g = self.config.global.maxconn;
        let f = self.config.frontends[frontend].maxconn;
        self.shared.actconn.get() < g
            && (f == 0 || self.shared.frontends[frontend].active.get() < f)
    }

    /// Waits until the limits leave room for one more session (without taking
    /// it); `false` when the shard is stopping.
    pub async fn room(self: &Rc<Self>, frontend: usize) -> bool {
        std::future::poll_fn(|cx| {
            if self.stopping.get() {
                return std::task::Poll::Ready(false);
            }
            if self.has_room(frontend) {
                return std::task::Poll::Ready(true);
            }
            self.wait_for_room(cx);
            if self.has_room(frontend) {
                std::task::Poll::Ready(true)
            } else {
                std::task::Poll::Pending
            }
        })
        .await
    }

    fn release_permit(&self, frontend: usize) {
        self.shared.frontends[frontend].active.release();
        self.shared.actconn.release();
        self.wake_limit_waiters();
        self.shared.notify_limit_waiters(self.id);
    }

    pub fn wake_limit_waiters(&self) {
        let waiters = std::mem::take(&mut *self.limit_waiters.borrow_mut());
        if !waiters.is_empty() {
            self.shared
                .limit_waiters
                .0
                .fetch_and(!(1 << self.id), Ordering::SeqCst);
        }
        for w in waiters {
            w.wake();
        }
    }
}
