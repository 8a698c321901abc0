//! Choosing a server for a session on one shard: the usable candidates from the
//! health replica, the backend's balancer, a [`ServerSlot`] counted under the
//! server's exact `maxconn`, and the FIFO queue of sessions waiting for a slot
//! (bounded by `maxqueue` and `timeout queue`). A freed slot goes straight to the
//! oldest local waiter that can use it, else other shards are told.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Waker;
use std::time::Instant;

use super::ctx::ShardCtx;
use crate::balance::{Candidate, HashKey, Pick};
use crate::log::Termination;
use crate::ring;
use crate::state::ShardMsg;

/// A session waiting for a server slot.
#[derive(Default)]
pub struct Ticket {
    /// Server the slot was granted on (the slot is already counted).
    pub granted: Cell<Option<usize>>,
    /// `source`-style hashing wants this server and no other.
    pub for_server: Cell<Option<usize>>,
    pub cancelled: Cell<bool>,
    pub waker: RefCell<Option<Waker>>,
}

impl Ticket {
    fn grant(&self, server: usize) {
        self.granted.set(Some(server));
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// A counted session on a server; releasing it may hand the slot straight to a
/// queued session.
pub struct ServerSlot {
    pub ctx: Rc<ShardCtx>,
    pub backend: usize,
    pub server: usize,
}

impl Drop for ServerSlot {
    fn drop(&mut self) {
        self.ctx.release_server(self.backend, self.server);
    }
}

/// The outcome of asking for a server.
pub enum Dispatch {
    Slot(ServerSlot),
    /// Wait on this ticket (already queued).
    Queued(Rc<Ticket>),
    /// No usable server at all.
    NoServer,
    /// The queue is at `maxqueue`.
    QueueFull,
}

/// Raises a high-water mark (read-mostly: no write unless it grows).
pub(crate) fn note_max(max: &std::sync::atomic::AtomicU32, v: u32) {
    if v > max.load(Ordering::Relaxed) {
        max.fetch_max(v, Ordering::Relaxed);
    }
}

/// A queued ticket owned by a waiting session. Dropped early (timeout, hard
/// stop), it leaves the queue, or gives back the slot granted meanwhile.
struct QueuedTicket<'a> {
    ctx: &'a Rc<ShardCtx>,
    backend: usize,
    ticket: Rc<Ticket>,
    taken: bool,
}

impl Drop for QueuedTicket<'_> {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        self.ctx.cancel_ticket(self.backend, &self.ticket);
        if let Some(server) = self.ticket.granted.get() {
            drop(self.ctx.slot_from_ticket(self.backend, server));
        }
    }
}

impl ShardCtx {
    /// Fills `out` with the usable servers of `backend` (reusing its memory).
    fn candidates(&self, backend: usize, exclude: Option<usize>, out: &mut Vec<Candidate>) {
        out.clear();
        let replica = self.replica.borrow();
        let cfg = &self.config.backends[backend];
        let shared = &self.shared.backends[backend];
        let usable = |i: usize| replica.get(backend, i).usable() && Some(i) != exclude;
        let mk = |i: usize| {
            let active = shared.servers[i].active.get();
            let max = cfg.servers[i].maxconn;
            Candidate {
                index: i,
                weight: replica.get(backend, i).weight,
                active,
                full: max > 0 && active >= max,
            }
        };
        out.extend(
            (0..cfg.servers.len())
                .filter(|&i| !cfg.servers[i].backup && usable(i))
                .map(mk),
        );
        if out.is_empty() {
            // Like HAProxy without `option allbackups`: the first usable backup only.
            out.extend(
                (0..cfg.servers.len())
                    .filter(|&i| cfg.servers[i].backup && usable(i))
                    .take(1)
                    .map(mk),
            );
        }
    }

    /// Usable active (non-backup) servers of `backend` on this shard's replica:
    /// HAProxy's `srv_act`, which decides whether a failed connect may be
    /// redispatched at once.
    pub fn usable_active_servers(&self, backend: usize) -> usize {
        let replica = self.replica.borrow();
        let cfg = &self.config.backends[backend];
        (0..cfg.servers.len())
            .filter(|&i| !cfg.servers[i].backup && replica.get(backend, i).usable())
            .count()
    }

    fn try_take(self: &Rc<Self>, backend: usize, server: usize) -> Option<ServerSlot> {
        let max = self.config.backends[backend].servers[server].maxconn;
        let s = &self.shared.backends[backend].servers[server];
        if !s.active.try_acquire(max) {
            return None;
        }
        s.max_active.fetch_max(s.active.get(), Ordering::Relaxed);
        s.total.0.fetch_add(1, Ordering::Relaxed);
        self.shared.backends[backend].active.try_acquire(0);
        if self.counting {
            let now = crate::ring::unix_now_coarse();
            let c = &self.shared.counters[self.id];
            c.backends[backend].tick(now);
            c.servers[backend][server].tick(now);
        }
        let b = &self.shared.backends[backend];
        note_max(&b.max_active, b.active.get());
        Some(ServerSlot {
            ctx: self.clone(),
            backend,
            server,
        })
    }

    /// Picks a server and takes a slot on it, or queues, following the backend's
    /// algorithm. `exclude` is the server a redispatch moves away from.
    pub fn dispatch(
        self: &Rc<Self>,
        backend: usize,
        key: HashKey<'_>,
        exclude: Option<usize>,
    ) -> Dispatch {
        for _ in 0..4 {
            let pick = {
                let mut cands = self.scratch.borrow_mut();
                self.candidates(backend, exclude, &mut cands);
                if cands.is_empty() && exclude.is_some() {
                    // Redispatching away from the only server: better it than nothing.
                    self.candidates(backend, None, &mut cands);
                }
                self.balancers.borrow_mut()[backend].pick(&cands, key)
            };
            match pick {
                Pick::Server(i) => {
                    if let Some(slot) = self.try_take(backend, i) {
                        return Dispatch::Slot(slot);
                    }
                    // Another shard took the last slot: choose again.
                }
                Pick::QueueFor(i) => return self.enqueue(backend, Some(i)),
                Pick::QueueAny => return self.enqueue(backend, None),
                Pick::NoServer => {
                    self.shared.backends[backend]
                        .no_server
                        .fetch_add(1, Ordering::Relaxed);
                    return Dispatch::NoServer;
                }
            }
        }
        self.enqueue(backend, None)
    }

    /// Gets a server slot, waiting in the backend queue if every server is full
    /// (bounded by `timeout queue`, else `timeout connect`, as HAProxy).
    pub async fn obtain(
        self: &Rc<Self>,
        backend: usize,
        key: HashKey<'_>,
        exclude: Option<usize>,
    ) -> Result<ServerSlot, Termination> {
        self.wait_dispatch(backend, self.dispatch(backend, key, exclude))
            .await
    }

    /// A slot on `server` and no other, as a persistence cookie or `use-server`
    /// asks (HAProxy's direct access): taken at once if the server has room,
    /// else queued for that server, bounded as [`Self::obtain`].
    pub async fn obtain_on(
        self: &Rc<Self>,
        backend: usize,
        server: usize,
    ) -> Result<ServerSlot, Termination> {
        let d = match self.try_take(backend, server) {
            Some(slot) => Dispatch::Slot(slot),
            None => self.enqueue(backend, Some(server)),
        };
        self.wait_dispatch(backend, d).await
    }

    /// The slot a dispatch gave, or the one its ticket is granted in time.
    async fn wait_dispatch(
        self: &Rc<Self>,
        backend: usize,
        d: Dispatch,
    ) -> Result<ServerSlot, Termination> {
        let ticket = match d {
            Dispatch::Slot(s) => return Ok(s),
            Dispatch::NoServer => return Err(Termination::NO_SERVER),
            Dispatch::QueueFull => return Err(Termination::QUEUE_FULL),
            Dispatch::Queued(ticket) => ticket,
        };
        let mut guard = QueuedTicket {
            ctx: self,
            backend,
            ticket,
            taken: false,
        };
        let t = self.config.backends[backend].timeouts;
        let deadline = t
            .queue
            .or(t.connect)
            .and_then(|l| Instant::now().checked_add(l));
        let ticket = guard.ticket.clone();
        let wait = std::future::poll_fn(|cx| match ticket.granted.get() {
            Some(s) => std::task::Poll::Ready(s),
            None => {
                *ticket.waker.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        });
        let granted = ring::with_deadline(deadline, wait).await;
        // Granted in the same instant the timer fired: take it.
        match granted.or_else(|| guard.ticket.granted.get()) {
            Some(server) => {
                guard.taken = true;
                Ok(self.slot_from_ticket(backend, server))
            }
            None => {
                drop(guard);
                self.shared.backends[backend]
                    .queue_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                Err(Termination::QUEUE_TIMEOUT)
            }
        }
    }

    fn queue_limit(&self, backend: usize) -> Option<u32> {
        let servers = &self.config.backends[backend].servers;
        if servers.iter().any(|s| s.maxqueue == 0) {
            None
        } else {
            Some(servers.iter().map(|s| s.maxqueue).sum())
        }
    }

    fn enqueue(self: &Rc<Self>, backend: usize, for_server: Option<usize>) -> Dispatch {
        let queued = &self.shared.backends[backend].queued.0;
        if let Some(limit) = self.queue_limit(backend) {
            if queued.load(Ordering::Acquire) >= limit {
                self.shared.backends[backend]
                    .queue_full
                    .fetch_add(1, Ordering::Relaxed);
                return Dispatch::QueueFull;
            }
        }
        let t = Rc::new(Ticket::default());
        t.for_server.set(for_server);
        let q = queued.fetch_add(1, Ordering::SeqCst) + 1;
        note_max(&self.shared.backends[backend].max_queued, q);
        self.queues.borrow_mut()[backend].push_back(t.clone());
        // A slot freed between our failed attempt and the enqueue above saw no
        // waiter; try once more now that we are visible.
        self.serve_queue(backend);
        Dispatch::Queued(t)
    }

    /// Withdraws a ticket that timed out or whose session went away.
    pub fn cancel_ticket(&self, backend: usize, t: &Rc<Ticket>) {
        if t.granted.get().is_some() || t.cancelled.get() {
            return;
        }
        t.cancelled.set(true);
        self.queues.borrow_mut()[backend].retain(|x| !Rc::ptr_eq(x, t));
        self.shared.backends[backend]
            .queued
            .0
            .fetch_sub(1, Ordering::SeqCst);
    }

    /// Gives free slots to queued sessions, oldest first.
    pub fn serve_queue(self: &Rc<Self>, backend: usize) {
        loop {
            let Some(t) = self
                .queues
                .borrow()
                .get(backend)
                .and_then(|q| q.front().cloned())
            else {
                return;
            };
            let server = match t.for_server.get() {
                Some(s) => self.try_take(backend, s),
                None => {
                    let pick = {
                        let mut cands = self.scratch.borrow_mut();
                        self.candidates(backend, None, &mut cands);
                        self.balancers.borrow_mut()[backend].pick(&cands, HashKey::None)
                    };
                    match pick {
                        Pick::Server(i) => self.try_take(backend, i),
                        _ => None,
                    }
                }
            };
            let Some(slot) = server else { return };
            self.queues.borrow_mut()[backend].pop_front();
            self.shared.backends[backend]
                .queued
                .0
                .fetch_sub(1, Ordering::SeqCst);
            let s = slot.server;
            // Ownership of the count moves to the ticket holder.
            std::mem::forget(slot);
            t.grant(s);
        }
    }

    fn release_server(self: &Rc<Self>, backend: usize, server: usize) {
        self.shared.backends[backend].active.release();
        // Hand the slot to the oldest local waiter that can use this server.
        if self.replica.borrow().get(backend, server).state == crate::state::ServerState::Up {
            let handoff = {
                let mut queues = self.queues.borrow_mut();
                let q = &mut queues[backend];
                let pos = q
                    .iter()
                    .position(|t| t.for_server.get().is_none_or(|s| s == server));
                pos.and_then(|p| q.remove(p))
            };
            if let Some(t) = handoff {
                self.shared.backends[backend]
                    .queued
                    .0
                    .fetch_sub(1, Ordering::SeqCst);
                self.shared.backends[backend].active.try_acquire(0);
                self.shared.backends[backend].servers[server]
                    .total
                    .0
                    .fetch_add(1, Ordering::Relaxed);
                t.grant(server);
                return;
            }
        }
        self.shared.backends[backend].servers[server]
            .active
            .release();
        if self.shared.backends[backend]
            .queued
            .0
            .load(Ordering::SeqCst)
            > 0
        {
            self.serve_queue(backend);
            self.shared
                .broadcast_except(self.id, ShardMsg::SlotFreed { backend });
        }
    }

    /// Turns a granted ticket into a slot the session owns.
    pub fn slot_from_ticket(self: &Rc<Self>, backend: usize, server: usize) -> ServerSlot {
        ServerSlot {
            ctx: self.clone(),
            backend,
            server,
        }
    }
}
