//! Data shards: one OS thread per CPU, pinned, each running its own io_uring ring,
//! its own `SO_REUSEPORT` listener for every bind, and every session the kernel
//! hands those listeners. A shard shares nothing on the hot path; limits are exact
//! through padded atomics in [`crate::state::Shared`], and state changes arrive
//! through the shard's inbox (a channel plus an eventfd its ring polls).
//!
//! A shard that dies (a panic, a failed `io_uring_enter`) is reported at once to
//! the main thread, which stops the process with a non-zero exit: a dead shard
//! would otherwise leave a listener in the `SO_REUSEPORT` group that nobody
//! accepts on.
//!
//! Listeners are bound (or taken over from a predecessor, `listeners`) by the
//! caller's thread before any shard starts, so a port in use is a startup error
//! (exit 2) that changes nothing.

mod accept;
mod account;
pub mod connect;
pub mod ctx;
pub mod dispatch;
mod http;

pub mod idle;
mod inspect;
pub mod limits;
mod listeners;
pub mod live;
pub mod server_conn;
mod servers;
pub mod session;
mod stop;
mod tcp;

pub use listeners::{bind_adopting, bind_all, exposed, BindReport};

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use self::ctx::ShardCtx;
use crate::config::model::{Config, Mode};
use crate::log::Logger;
use crate::ring::{self, events, PollMulti, RingConfig, RingError};
use crate::state::{ShardMsg, Shared};
use crate::sys::signals;
use crate::sys::socket::Socket;

#[derive(Debug)]
pub enum StartError {
    Bind {
        frontend: String,
        addr: SocketAddr,
        err: io::Error,
    },
    Ring(RingError),
    Thread(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind {
                frontend,
                addr,
                err,
            } => {
                write!(f, "frontend \"{frontend}\": cannot bind {addr}: {err}")
            }
            StartError::Ring(e) => write!(f, "{e}"),
            StartError::Thread(e) => write!(f, "cannot start shard thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Listening sockets for one shard: (frontend index, socket).
/// (frontend, bind index within it, listening socket).
pub type ShardListeners = Vec<(usize, usize, Socket)>;

/// The number of data shards: `global.shards`, else one per CPU we may run on.
pub fn shard_count(config: &Config, override_n: Option<usize>) -> usize {
    override_n
        .or(config.global.shards)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .clamp(1, 64)
}

/// Running data shards.
pub struct Shards {
    pub shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// Shards that ended while the process was not stopping: (shard, why).
    pub failures: Arc<Mutex<Vec<(usize, String)>>>,
}

/// Reports a shard thread's end to the main thread, however it ends (returned
/// or unwinding from a panic): an end that was not asked for is a failure.
struct ExitReport {
    id: usize,
    shared: Arc<Shared>,
    failures: Arc<Mutex<Vec<(usize, String)>>>,
    why: Option<String>,
}

impl Drop for ExitReport {
    fn drop(&mut self) {
        let stopping = self
            .shared
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst);
        let why = match self.why.take() {
            Some(w) => w,
            None if std::thread::panicking() => "panicked".to_string(),
            None if !stopping => "exited unexpectedly".to_string(),
            None => return,
        };
        if let Ok(mut f) = self.failures.lock() {
            f.push((self.id, why));
        }
        let _ = signals::notify_shard_exit();
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".to_string())
}

impl Shards {
    /// Starts one thread per listener set; returns once every ring is up.
    pub fn start(
        config: Arc<Config>,
        listeners: Vec<ShardListeners>,
        logger: Logger,
    ) -> Result<Shards, StartError> {
        Self::start_with(config, listeners, logger, None)
    }

    /// As [`Shards::start`]; `recheck`: the listeners were taken over from a
    /// process that may still be accepting on them, so for this long accept
    /// loops also look at the queues on a timer (see `accept::RECHECK`).
    pub fn start_with(
        config: Arc<Config>,
        listeners: Vec<ShardListeners>,
        logger: Logger,
        recheck: Option<Duration>,
    ) -> Result<Shards, StartError> {
        let n = listeners.len();
        let (shared, rxs) = Shared::new(config, n).map_err(StartError::Thread)?;
        if let Some(until) = recheck.and_then(|d| Instant::now().checked_add(d)) {
            let _ = shared.recheck_accept_until.set(until);
        }
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), RingError>>(n);
        let mut threads = Vec::new();
        let failures = Arc::new(Mutex::new(Vec::new()));
        for (i, (ls, rx)) in listeners.into_iter().zip(rxs).enumerate() {
            let shared = shared.clone();
            let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
            let ready = ready_tx.clone();
            let logger = logger.clone();
            let failures = failures.clone();
            let t = std::thread::Builder::new()
                .name(format!("ringlb-shard-{i}"))
                .spawn(move || {
                    let mut report = ExitReport {
                        id: i,
                        shared: shared.clone(),
                        failures,
                        why: None,
                    };
                    if let Some(c) = core {
                        core_affinity::set_for_current(c);
                    }
                    let ready2 = ready.clone();
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        ring::block_on(RingConfig::default(), async move {
                            let _ = ready2.send(Ok(()));
                            shard_main(i, shared, ls, rx, logger).await
                        })
                    }));
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            report.why = Some(e.to_string());
                            let _ = ready.send(Err(e));
                        }
                        Err(p) => report.why = Some(panic_message(&*p)),
                    }
                })
                .map_err(StartError::Thread)?;
            threads.push(t);
        }
        for _ in 0..n {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(StartError::Ring(e)),
                Err(_) => return Err(StartError::Thread(io::Error::other("shard thread died"))),
            }
        }
        Ok(Shards {
            shared,
            threads,
            failures,
        })
    }

    /// Stops accepting everywhere; sessions drain.
    pub fn stop(&self) {
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for inbox in &self.shared.inboxes {
            inbox.send(ShardMsg::Stop);
        }
    }

    /// Shards that died, with why; empty while all is well.
    pub fn failed(&self) -> Vec<(usize, String)> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Closes every session now, whatever its state.
    pub fn kill(&self) {
        for inbox in &self.shared.inboxes {
            inbox.send(ShardMsg::Kill);
        }
    }

    pub fn all_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Waits for every shard, killing sessions at `hard_stop` if they still run,
    /// or at once on a second SIGTERM/SIGINT (the operator insists).
    pub fn join(self, hard_stop: Option<Instant>) {
        let mut killed = false;
        while !self.all_finished() {
            let insist = matches!(
                signals::wait(Duration::from_millis(10)),
                Ok(Some(libc::SIGTERM | libc::SIGINT))
            );
            if !killed && (insist || hard_stop.is_some_and(|h| Instant::now() >= h)) {
                self.kill();
                killed = true;
            }
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

async fn shard_main(
    id: usize,
    shared: Arc<Shared>,
    listeners: ShardListeners,
    rx: Receiver<ShardMsg>,
    logger: Logger,
) {
    let ctx = Rc::new(ShardCtx::new(id, shared, logger));
    let tune = &ctx.config.global.tune;
    if tune.ring_copy {
        match ring::setup_buffers(tune.ring_buffers, tune.bufsize) {
            Ok(()) => ctx.ring_copy.set(true),
            // An older kernel (no provided-buffer rings or multishot recv):
            // the poll + recv/send path serves instead.
            Err(e) if id == 0 => ctx.logger.event(
                crate::log::level::NOTICE,
                format!("ring copy path unavailable ({e}); using poll + recv/send"),
            ),
            Err(_) => {}
        }
    }
    for (fe, bind, sock) in listeners {
        ring::spawn(accept::accept_loop(ctx.clone(), fe, bind, sock));
    }
    ring::spawn(inbox_loop(ctx.clone(), rx));
    if ctx.config.frontends.iter().any(|f| f.mode == Mode::Http) {
        ring::spawn(purge_idle(ctx.clone()));
    }
    std::future::poll_fn(|cx| {
        if ctx.stopping.get() && ctx.sessions.get() == 0 {
            return std::task::Poll::Ready(());
        }
        *ctx.stop_waker.borrow_mut() = Some(cx.waker().clone());
        std::task::Poll::Pending
    })
    .await;
}

/// Closes the idle HTTP server connections the servers closed (so they do
/// not hold fds until the next request finds them) and, each server's
/// `pool-purge-delay`, half of the others.
async fn purge_idle(ctx: Rc<ShardCtx>) {
    let mut wait = idle::PURGE_TICK_MAX;
    while !ctx.stopping.get() {
        ring::sleep_until(Instant::now() + wait).await;
        wait = ctx
            .idle
            .purge(Instant::now())
            .1
            .max(Duration::from_millis(10));
    }
}

async fn inbox_loop(ctx: Rc<ShardCtx>, rx: Receiver<ShardMsg>) {
    let shared = ctx.shared.clone();
    let wake = &shared.inboxes[ctx.id].wake;
    let mut poll = PollMulti::new(wake.as_raw_fd(), events::IN);
    loop {
        if poll.next().await.is_err() {
            return;
        }
        let _ = wake.drain();
        while let Ok(msg) = rx.try_recv() {
            match msg {
                ShardMsg::Server(ev) => ctx.apply(&ev),
                ShardMsg::LimitFreed => ctx.wake_limit_waiters(),
                ShardMsg::SlotFreed { backend } => ctx.serve_queue(backend),
                ShardMsg::Stop => ctx.begin_stop(),
                ShardMsg::Kill => ctx.hard_stop(),
                ShardMsg::ServerAddr {
                    backend,
                    server,
                    addr,
                } => ctx.set_server_addr(backend, server, addr),
                ShardMsg::KillServerSessions { backend, server } => ctx
                    .live
                    .kill(true, |b, s| b == backend && s == Some(server)),
                ShardMsg::Publish => ctx.publish(),
                ShardMsg::ListSessions { reply } => {
                    let sessions = ctx.live.describe(|b, s| ctx.server_addr(b, s));
                    let _ = reply.send((ctx.id, sessions));
                }
                ShardMsg::KillSession { id, reply } => {
                    let _ = reply.send(ctx.live.kill_one(id));
                }
            }
        }
    }
}
