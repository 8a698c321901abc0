//! `ShardCtx`: everything one data shard owns, gathered in one place so sessions
//! can reach it through an `Rc`. Its jobs live in their own modules, each an
//! `impl ShardCtx` block or a type of its own:
//! - `limits`: `global.maxconn` and frontend `maxconn` permits, accept wake-ups;
//! - `dispatch`: choosing a server, server slots and the backend queues;
//! - `servers`: applying server state events to the shard's health replica;
//! - `live`: the registry of live sessions, so they can be killed;
//! - `stop`: counting sessions and stopping.
//!
//! Shard-local, never shared; the cross-shard parts are atomics in `Shared`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use super::dispatch::Ticket;
use super::idle::IdlePool;
use super::live::LiveSessions;
use crate::balance::{Balancer, Candidate};
use crate::config::model::{Config, Mode};
use crate::l4::{BufferPool, PipePool, Pools};
use crate::log::Logger;
use crate::state::{HealthReplica, LatencyBook, Shared};

pub struct ShardCtx {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub config: Arc<Config>,
    pub pools: Pools,
    pub logger: Logger,
    pub(super) replica: RefCell<HealthReplica>,
    pub(super) balancers: RefCell<Vec<Balancer>>,
    /// Reused for every dispatch, so choosing a server allocates nothing.
    pub(super) scratch: RefCell<Vec<Candidate>>,
    pub(super) queues: RefCell<Vec<VecDeque<Rc<Ticket>>>>,
    pub(super) limit_waiters: RefCell<Vec<Waker>>,
    pub live: LiveSessions,
    /// Per frontend: does a session need the client's address (a syscall)?
    /// Its log line, `balance source`, `X-Forwarded-For`, `use_backend` rules
    /// and `send-proxy` read it. Decided once, from the configuration.
    pub wants_client_addr: Vec<bool>,
    /// Per frontend (mode http): does a session need the address the client
    /// connected to (a syscall)? Rules read it (`dst`), and so does a PROXY
    /// header to a server. Decided once, from the configuration.
    pub wants_local_addr: Vec<bool>,
    /// Bytes forwarded on the ring copy path and on the poll + splice path.
    pub ring_bytes: Cell<u64>,
    pub poll_bytes: Cell<u64>,
    /// Idle HTTP server connections, per backend and server.
    pub idle: IdlePool,
    /// This shard's latency histograms, published on a stats reader's request.
    pub latency: RefCell<LatencyBook>,
    /// `tune.stats-counters`: traffic counters, rates and histograms kept.
    pub counting: bool,
    /// Sessions started on this shard and not yet finished.
    pub sessions: Cell<usize>,
    pub stopping: Cell<bool>,
    /// Set when `hard-stop-after` fires: every session, in whatever state, ends.
    pub killed: Cell<bool>,
    /// The shard's provided-buffer ring is up: TCP sessions start on the ring
    /// copy path (`l4::RingPump`).
    pub ring_copy: Cell<bool>,
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
        let balancers = config
            .backends
            .iter()
            .map(|b| Balancer::new(b.balance, b.hash_type, b.servers.len(), 0x5eed + id as u64))
            .collect();
        let queues = config.backends.iter().map(|_| VecDeque::new()).collect();
        let idle = IdlePool::new(&config, shards);
        let latency = LatencyBook::new(&config);
        let counting = tune.stats_counters;
        let sends_proxy = config
            .backends
            .iter()
            .any(|b| b.servers.iter().any(|s| s.send_proxy.is_some()));
        let wants_local_addr = config
            .frontends
            .iter()
            .map(|fe| fe.rules.get().is_some() || sends_proxy)
            .collect();
        let wants_client_addr = config
            .frontends
            .iter()
            .enumerate()
            .map(|(i, fe)| {
                // Rules may fetch `src` (in mode tcp too: `use-backend`).
                logger.logs_frontend(i)
                    || fe.rules.get().is_some()
                    || (fe.mode == Mode::Http
                        && (fe.forwardfor.is_some()
                            || config.backends.iter().any(|b| b.forwardfor.is_some())))
                    || fe
                        .default_backend
                        .into_iter()
                        .chain(fe.use_backend.iter().map(|u| u.backend))
                        .any(|b| {
                            let be = &config.backends[b];
                            be.balance.hashes_client()
                                || be.servers.iter().any(|s| s.send_proxy.is_some())
                        })
            })
            .collect();
        ShardCtx {
            id,
            pools: Pools {
                buffers: BufferPool::new(tune.bufsize.max(1024)),
                pipes: PipePool::new(tune.pipesize, maxpipes),
                pipe_size: tune.pipesize.max(4096),
            },
            replica: RefCell::new(HealthReplica::new(&config)),
            shared,
            config,
            logger,
            balancers: RefCell::new(balancers),
            scratch: RefCell::new(Vec::new()),
            queues: RefCell::new(queues),
            limit_waiters: RefCell::new(Vec::new()),
            live: LiveSessions::new(id),
            wants_client_addr,
            wants_local_addr,
            idle,
            latency: RefCell::new(latency),
            ring_bytes: Cell::new(0),
            poll_bytes: Cell::new(0),
            counting,
            sessions: Cell::new(0),
            stopping: Cell::new(false),
            killed: Cell::new(false),
            ring_copy: Cell::new(false),
            stop_waker: RefCell::new(None),
            accept_wakers: RefCell::new(Vec::new()),
        }
    }
}
