//! The control shard: one thread running a glommio `LocalExecutor` that checks
//! every server with `check = true`, keeps each server's health state machine and
//! last-check record, and on a transition logs HAProxy's line and broadcasts one
//! event to every data shard (channel + eventfd wake). It is the only place that
//! changes server state; it never touches a data shard's memory.

mod api;
pub mod check;
mod errors;
pub mod health;
mod ops;
mod page_admin;
mod sessions;
pub mod stats;
pub mod status;
pub(crate) mod timers;
pub(crate) mod web;
mod web_log;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::config::model::Config;
use crate::log::{level, Logger};
use crate::state::Shared;
use check::CheckResult;
use health::{Health, Transition};
use status::StatusTable;

/// Every server's status, shared by the control shard's tasks (checks, the
/// runtime API, the stats page); the control shard is single-threaded.
pub type Table = Rc<std::cell::RefCell<StatusTable>>;

/// Tells the control shard to stop. The waker makes it notice at once, from any
/// thread (glommio queues a foreign wake to the executor), instead of polling a
/// flag: an idle control shard then never wakes up.
#[derive(Default)]
struct StopSignal {
    stopped: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl StopSignal {
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().ok().and_then(|mut w| w.take()) {
            w.wake();
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if let Ok(mut w) = self.waker.lock() {
                *w = Some(cx.waker().clone());
            }
            // Checked after registering, so a stop in between is not missed.
            if self.is_stopped() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

pub struct ControlHandle {
    stop: Arc<StopSignal>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

impl ControlHandle {
    /// Stops the checks and joins the thread.
    pub fn stop(mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the control shard.
pub fn spawn(
    config: Arc<Config>,
    shared: Arc<Shared>,
    logger: Logger,
) -> std::io::Result<ControlHandle> {
    let stop = Arc::new(StopSignal::default());
    let stop2 = stop.clone();
    // The runtime API socket is bound by the control shard before `spawn`
    // returns, so a bad path is a startup error reported here.
    let (bound_tx, bound_rx) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
    // Checks move a few bytes each: glommio's default 10 MiB of registered I/O
    // memory would only count against RLIMIT_MEMLOCK (a non-root ringlb may have
    // little), so take its minimum and a small ring.
    let builder = glommio::LocalExecutorBuilder::default()
        .name("ringlb-control")
        .io_memory(64 << 10)
        .ring_depth(256);
    let thread = builder
        .spawn(move || async move { run(config, shared, logger, stop2, bound_tx).await })
        .map_err(|e| {
            std::io::Error::other(format!("cannot start the control shard (glommio): {e}"))
        })?;
    let handle = ControlHandle {
        stop,
        thread: Some(thread),
    };
    match bound_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            handle.stop();
            Err(e)
        }
        Err(_) => Err(std::io::Error::other("the control shard ended at startup")),
    }
}

async fn run(
    config: Arc<Config>,
    shared: Arc<Shared>,
    logger: Logger,
    stop: Arc<StopSignal>,
    bound: std::sync::mpsc::SyncSender<std::io::Result<()>>,
) {
    let table: Table = Rc::new(std::cell::RefCell::new(StatusTable::new(&config)));
    let bound_all = config
        .global
        .admin_socket
        .as_deref()
        .map(api::bind)
        .transpose()
        .and_then(|api| Ok((api, web::bind(&config)?)));
    let (listener, pages) = match bound_all {
        Ok(l) => {
            let _ = bound.send(Ok(()));
            l
        }
        Err(e) => {
            let _ = bound.send(Err(e));
            return;
        }
    };
    for (frontend, l) in pages {
        let admin = page_admin::AdminRule::compile(&config, &config.frontends[frontend])
            .unwrap_or_else(|e| {
                // Refused: the page stays read-only rather than open to all.
                logger.event(
                    level::ALERT,
                    format!(
                        "proxy {}: {e}; stats admin disabled",
                        config.frontends[frontend].name
                    ),
                );
                None
            });
        let w = web::Web {
            config: config.clone(),
            shared: shared.clone(),
            table: table.clone(),
            logger: logger.clone(),
            frontend,
            admin,
        };
        glommio::spawn_local(async move { w.serve(l).await }).detach();
    }
    if let Some(l) = listener {
        let ctx = api::Api {
            config: config.clone(),
            shared: shared.clone(),
            logger: logger.clone(),
            table: table.clone(),
        };
        glommio::spawn_local(async move { ctx.serve(l).await }).detach();
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ std::process::id() as u64;
    for (bi, b) in config.backends.iter().enumerate() {
        for (si, s) in b.servers.iter().enumerate() {
            if !s.check || s.disabled {
                continue;
            }
            // Spread first checks over one interval so they never fire in a burst.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let jitter = Duration::from_millis(seed % (s.inter.as_millis().max(1) as u64));
            let ctx = ServerCheck {
                config: config.clone(),
                shared: shared.clone(),
                logger: logger.clone(),
                stop: stop.clone(),
                table: table.clone(),
                backend: bi,
                server: si,
            };
            glommio::spawn_local(async move { ctx.run(jitter).await }).detach();
        }
    }
    // Checks run as detached tasks; returning ends the executor and them.
    stop.wait().await;
}

/// HAProxy's `slowstart`: the weight grows in 20 steps over `period` after a
/// server comes back UP, from 5 % to 100 %; a server that goes DOWN again, or
/// whose ramp was replaced, ends this one.
async fn ramp_weight(
    table: Table,
    shared: Arc<Shared>,
    backend: usize,
    server: usize,
    period: Duration,
) {
    let step = period / 20;
    let start = std::time::Instant::now();
    loop {
        timers::sleep(step).await;
        let done = start.elapsed() >= period;
        let pct = ((start.elapsed().as_millis() * 100) / period.as_millis().max(1)).min(100) as u32;
        let mut t = table.borrow_mut();
        if !t.servers[backend][server].up || t.servers[backend][server].ramp.is_none() {
            return;
        }
        t.set(&shared, backend, server, |st| {
            st.ramp = if done { None } else { Some(pct.max(5)) };
        });
        if done {
            return;
        }
    }
}

struct ServerCheck {
    config: Arc<Config>,
    shared: Arc<Shared>,
    logger: Logger,
    stop: Arc<StopSignal>,
    table: Table,
    backend: usize,
    server: usize,
}

impl ServerCheck {
    async fn run(self, first_delay: Duration) {
        let b = &self.config.backends[self.backend];
        let s = &b.servers[self.server];
        let mut health = Health::new(s.rise, s.fall, s.inter, s.fastinter, s.downinter);
        // A server the previous process saw DOWN stays DOWN until `rise`
        // checks pass (`load-server-state-from-file`).
        health.up = s.saved.is_none_or(|st| st.up);

        // HAProxy: without `timeout check`, `inter` bounds the whole check.
        let timeout = b.timeouts.check.unwrap_or(s.inter);
        timers::sleep(first_delay).await;
        while !self.stop.is_stopped() {
            let enabled = self.table.borrow().servers[self.backend][self.server].checks_enabled;
            if !enabled {
                // `disable health`: no checks until `enable health`.
                timers::sleep(s.inter).await;
                continue;
            }
            // The server's current address (the runtime API may move it).
            let cur = self.table.borrow().servers[self.backend][self.server].addr;
            let addr = std::net::SocketAddr::new(
                s.check_addr.unwrap_or(cur.ip()),
                s.check_port.unwrap_or(cur.port()),
            );
            let r = check::probe(&b.check, addr, timeout, s.check_tls.as_deref()).await;
            {
                let mut t = self.table.borrow_mut();
                let st = &mut t.servers[self.backend][self.server];
                if !r.status.is_ok() && r.status != check::CheckStatus::SockErr {
                    st.check_failures += 1;
                }
                st.last_check = Some(r.clone());
            }
            if let Some(t) = health.on_result(r.clone()) {
                self.transition(t, &r);
            }
            timers::sleep(health.next_delay()).await;
        }
    }

    fn transition(&self, t: Transition, r: &CheckResult) {
        let b = &self.config.backends[self.backend];
        let up = t == Transition::WentUp;
        let slowstart = b.servers[self.server]
            .slowstart
            .filter(|d| !d.is_zero() && up);
        let mut table = self.table.borrow_mut();
        table.set(&self.shared, self.backend, self.server, |st| {
            st.up = up;
            // `slowstart`: back from DOWN, the weight ramps up from ~0.
            st.ramp = slowstart.map(|_| 5);
        });
        if let Some(period) = slowstart {
            let (table2, shared, backend, server) = (
                self.table.clone(),
                self.shared.clone(),
                self.backend,
                self.server,
            );
            glommio::spawn_local(async move {
                ramp_weight(table2, shared, backend, server, period).await
            })
            .detach();
        }
        let (active, backup) = table.usable_counts(&self.config, self.backend);
        drop(table);
        let mut line = format!(
            "Server {}/{} is {}, reason: {}",
            b.name,
            b.servers[self.server].name,
            if up { "UP" } else { "DOWN" },
            r.status.reason()
        );
        if let Some(c) = r.code {
            line += &format!(", code: {c}");
        }
        if !r.info.is_empty() && r.code.is_none() {
            line += &format!(", info: \"{}\"", r.info);
        }
        line += &format!(
            ", check duration: {}ms. {active} active and {backup} backup servers {}.",
            r.duration.as_millis(),
            if up { "online" } else { "left" }
        );
        self.logger
            .event(if up { level::NOTICE } else { level::ALERT }, line);
        if !up && active + backup == 0 {
            self.logger
                .event(0, format!("backend {} has no server available!", b.name));
        }
    }
}
