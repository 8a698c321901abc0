//! `ShardCtx`: everything one data shard owns — its replica of server health and
//! admin state, its balancers, its queues of sessions waiting for a server slot,
//! its pools, and the registry of live sessions (so they can be killed when their
//! server goes down or the hard-stop timer fires). Shard-local, never shared; the
//! cross-shard parts are atomics in `Shared`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;

use super::shared::{ShardMsg, Shared};
use crate::balance::{Balancer, Candidate, Pick};
use crate::config::model::{Config, OnMarkedDown};
use crate::control::event::{ServerEvent, ServerState};
use crate::l4::{BufferPool, KillSwitch, PipePool, Pools};
use crate::log::Logger;

/// One server as this shard sees it.
#[derive(Debug, Clone, Copy)]
pub struct ServerReplica {
    pub state: ServerState,
    pub weight: u32,
}

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

struct LiveSession {
    backend: usize,
    server: usize,
    kill: Rc<KillSwitch>,
}

pub struct ShardCtx {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub config: Arc<Config>,
    pub pools: Pools,
    pub logger: Logger,
    replica: RefCell<Vec<Vec<ServerReplica>>>,
    balancers: RefCell<Vec<Balancer>>,
    /// Reused for every dispatch, so choosing a server allocates nothing.
    scratch: RefCell<Vec<Candidate>>,
    queues: RefCell<Vec<VecDeque<Rc<Ticket>>>>,
    limit_waiters: RefCell<Vec<Waker>>,
    live: RefCell<Vec<Option<LiveSession>>>,
    live_free: RefCell<Vec<usize>>,
    /// Sessions started on this shard and not yet finished.
    pub sessions: Cell<usize>,
    pub stopping: Cell<bool>,
    /// Woken when `stopping` is set or the last session ends.
    pub stop_waker: RefCell<Option<Waker>>,
    /// One slot per accept loop, so a loop's waker is replaced, never piled up.
    pub accept_wakers: RefCell<Vec<Option<Waker>>>,
}

impl ShardCtx {
    pub fn new(id: usize, shared: Arc<Shared>, logger: Logger) -> ShardCtx {
        let config = shared.config.clone();
        let tune = &config.global.tune;
        let shards = shared.inboxes.len().max(1);
        let maxpipes = if tune.maxpipes > 0 {
            tune.maxpipes.div_ceil(shards)
        } else {
            ((config.global.maxconn as usize) / 4 / shards).max(16)
        };
        let replica = config
            .backends
            .iter()
            .map(|b| {
                b.servers
                    .iter()
                    .map(|s| ServerReplica {
                        state: if s.disabled {
                            ServerState::Maint
                        } else {
                            ServerState::Up
                        },
                        weight: s.weight,
                    })
                    .collect()
            })
            .collect();
        let balancers = config
            .backends
            .iter()
            .map(|b| Balancer::new(b.balance, b.hash_type, b.servers.len(), 0x5eed + id as u64))
            .collect();
        let queues = config.backends.iter().map(|_| VecDeque::new()).collect();
        ShardCtx {
            id,
            pools: Pools {
                buffers: BufferPool::new(tune.bufsize.max(1024)),
                pipes: PipePool::new(tune.pipesize, maxpipes),
                pipe_size: tune.pipesize.max(4096),
            },
            shared,
            config,
            logger,
            replica: RefCell::new(replica),
            balancers: RefCell::new(balancers),
            scratch: RefCell::new(Vec::new()),
            queues: RefCell::new(queues),
            limit_waiters: RefCell::new(Vec::new()),
            live: RefCell::new(Vec::new()),
            live_free: RefCell::new(Vec::new()),
            sessions: Cell::new(0),
            stopping: Cell::new(false),
            stop_waker: RefCell::new(None),
            accept_wakers: RefCell::new(Vec::new()),
        }
    }

    // ---- global and frontend limits -------------------------------------------

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
        self.shared.frontends[frontend]
            .total
            .fetch_add(1, Ordering::Relaxed);
        Some(Permit {
            ctx: self.clone(),
            frontend,
        })
    }

    /// Waits for a permit. The waiter registers before its last try, so a slot
    /// freed on any shard in between is never missed.
    pub async fn permit(self: &Rc<Self>, frontend: usize) -> Option<Permit> {
        std::future::poll_fn(|cx| {
            if self.stopping.get() {
                return std::task::Poll::Ready(None);
            }
            if let Some(p) = self.try_permit(frontend) {
                return std::task::Poll::Ready(Some(p));
            }
            self.limit_waiters.borrow_mut().push(cx.waker().clone());
            self.shared
                .limit_waiters
                .0
                .fetch_or(1 << self.id, Ordering::SeqCst);
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
            self.limit_waiters.borrow_mut().push(cx.waker().clone());
            self.shared
                .limit_waiters
                .0
                .fetch_or(1 << self.id, Ordering::SeqCst);
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

    // ---- servers ----------------------------------------------------------------

    /// Fills `out` with the usable servers of `backend` (reusing its memory).
    fn candidates(&self, backend: usize, exclude: Option<usize>, out: &mut Vec<Candidate>) {
        out.clear();
        let replica = self.replica.borrow();
        let cfg = &self.config.backends[backend];
        let shared = &self.shared.backends[backend];
        let usable = |i: usize| {
            let r = &replica[backend][i];
            r.state == ServerState::Up && r.weight > 0 && Some(i) != exclude
        };
        let mk = |i: usize| {
            let active = shared.servers[i].active.get();
            let max = cfg.servers[i].maxconn;
            Candidate {
                index: i,
                weight: replica[backend][i].weight,
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

    fn try_take(self: &Rc<Self>, backend: usize, server: usize) -> Option<ServerSlot> {
        let max = self.config.backends[backend].servers[server].maxconn;
        let s = &self.shared.backends[backend].servers[server];
        if !s.active.try_acquire(max) {
            return None;
        }
        s.max_active.fetch_max(s.active.get(), Ordering::Relaxed);
        s.total.0.fetch_add(1, Ordering::Relaxed);
        self.shared.backends[backend].active.try_acquire(0);
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
        client: IpAddr,
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
                self.balancers.borrow_mut()[backend].pick(&cands, client)
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
        queued.fetch_add(1, Ordering::SeqCst);
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
                        self.balancers.borrow_mut()[backend]
                            .pick(&cands, IpAddr::from([0, 0, 0, 0]))
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
        let usable = {
            let r = self.replica.borrow()[backend][server];
            r.state == ServerState::Up
        };
        if usable {
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

    pub fn replica(&self, backend: usize, server: usize) -> ServerReplica {
        self.replica.borrow()[backend][server]
    }

    /// Applies a state change from the control shard.
    pub fn apply(self: &Rc<Self>, ev: &ServerEvent) {
        let Some(r) = self
            .replica
            .borrow_mut()
            .get_mut(ev.backend)
            .and_then(|b| b.get_mut(ev.server))
            .copied()
        else {
            return;
        };
        let mut r = r;
        r.state = ev.state;
        if let Some(w) = ev.weight {
            r.weight = w;
        }
        self.replica.borrow_mut()[ev.backend][ev.server] = r;
        match ev.state {
            ServerState::Down | ServerState::Maint => {
                // Sessions queued for this server specifically go to any server.
                for t in self.queues.borrow()[ev.backend].iter() {
                    if t.for_server.get() == Some(ev.server) {
                        t.for_server.set(None);
                    }
                }
                if self.config.backends[ev.backend].on_marked_down == OnMarkedDown::ShutdownSessions
                {
                    self.kill_sessions(|b, s| b == ev.backend && s == ev.server);
                }
            }
            ServerState::Up | ServerState::Drain => {}
        }
        self.serve_queue(ev.backend);
        self.shared.events_applied[self.id]
            .0
            .fetch_add(1, Ordering::Release);
    }

    // ---- live sessions ------------------------------------------------------------

    pub fn register_live(&self, backend: usize, server: usize, kill: Rc<KillSwitch>) -> usize {
        let entry = LiveSession {
            backend,
            server,
            kill,
        };
        let mut live = self.live.borrow_mut();
        match self.live_free.borrow_mut().pop() {
            Some(i) => {
                live[i] = Some(entry);
                i
            }
            None => {
                live.push(Some(entry));
                live.len() - 1
            }
        }
    }

    pub fn unregister_live(&self, key: usize) {
        self.live.borrow_mut()[key] = None;
        self.live_free.borrow_mut().push(key);
    }

    pub fn kill_sessions(&self, matches: impl Fn(usize, usize) -> bool) {
        let kills: Vec<Rc<KillSwitch>> = self
            .live
            .borrow()
            .iter()
            .flatten()
            .filter(|l| matches(l.backend, l.server))
            .map(|l| l.kill.clone())
            .collect();
        for k in kills {
            k.kill();
        }
    }

    pub fn session_started(&self) {
        self.sessions.set(self.sessions.get() + 1);
    }

    pub fn session_ended(&self) {
        self.sessions.set(self.sessions.get() - 1);
        if self.sessions.get() == 0 && self.stopping.get() {
            if let Some(w) = self.stop_waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    pub fn begin_stop(&self) {
        self.stopping.set(true);
        self.wake_limit_waiters();
        let wakers: Vec<Waker> = self
            .accept_wakers
            .borrow_mut()
            .iter_mut()
            .filter_map(|w| w.take())
            .collect();
        for w in wakers {
            w.wake();
        }
        if let Some(w) = self.stop_waker.borrow_mut().take() {
            w.wake();
        }
    }
}
