//! The control shard: one thread running a glommio `LocalExecutor` that checks
//! every server with `check = true`, keeps each server's health state machine and
//! last-check record, and on a transition logs HAProxy's line and broadcasts one
//! event to every data shard (channel + eventfd wake). It is the only place that
//! changes server state; it never touches a data shard's memory.

pub mod check;
pub mod health;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::config::model::Config;
use crate::log::{level, Logger};
use crate::state::{ServerEvent, ServerState, ShardMsg, Shared};
use check::CheckResult;
use health::{Health, Transition};

/// Last check of every server, by backend then server (`None`: not checked yet,
/// or not checked at all). Read by the stats page; written only by the control
/// shard, off the data path.
pub type LastChecks = Arc<Mutex<Vec<Vec<Option<CheckResult>>>>>;

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
    pub last_checks: LastChecks,
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
    let last_checks: LastChecks = Arc::new(Mutex::new(
        config
            .backends
            .iter()
            .map(|b| vec![None; b.servers.len()])
            .collect(),
    ));
    let (stop2, last2) = (stop.clone(), last_checks.clone());
    // Checks move a few bytes each: glommio's default 10 MiB of registered I/O
    // memory would only count against RLIMIT_MEMLOCK (a non-root ringlb may have
    // little), so take its minimum and a small ring.
    let builder = glommio::LocalExecutorBuilder::default()
        .name("ringlb-control")
        .io_memory(64 << 10)
        .ring_depth(256);
    let thread = builder
        .spawn(move || async move { run(config, shared, logger, stop2, last2).await })
        .map_err(|e| {
            std::io::Error::other(format!("cannot start the control shard (glommio): {e}"))
        })?;
    Ok(ControlHandle {
        stop,
        thread: Some(thread),
        last_checks,
    })
}

/// Up/down view of every checked server, to count what is left in a backend.
type States = Rc<std::cell::RefCell<Vec<Vec<bool>>>>;

async fn run(
    config: Arc<Config>,
    shared: Arc<Shared>,
    logger: Logger,
    stop: Arc<StopSignal>,
    last: LastChecks,
) {
    let states: States = Rc::new(std::cell::RefCell::new(
        config
            .backends
            .iter()
            .map(|b| b.servers.iter().map(|s| !s.disabled).collect())
            .collect(),
    ));
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
                last: last.clone(),
                states: states.clone(),
                backend: bi,
                server: si,
            };
            glommio::spawn_local(async move { ctx.run(jitter).await }).detach();
        }
    }
    // Checks run as detached tasks; returning ends the executor and them.
    stop.wait().await;
}

struct ServerCheck {
    config: Arc<Config>,
    shared: Arc<Shared>,
    logger: Logger,
    stop: Arc<StopSignal>,
    last: LastChecks,
    states: States,
    backend: usize,
    server: usize,
}

impl ServerCheck {
    async fn run(self, first_delay: Duration) {
        let b = &self.config.backends[self.backend];
        let s = &b.servers[self.server];
        let mut health = Health::new(s.rise, s.fall, s.inter, s.fastinter, s.downinter);
        let addr = std::net::SocketAddr::new(
            s.check_addr.unwrap_or(s.addr.ip()),
            s.check_port.unwrap_or(s.addr.port()),
        );
        // HAProxy: without `timeout check`, `inter` bounds the whole check.
        let timeout = b.timeouts.check.unwrap_or(s.inter);
        glommio::timer::sleep(first_delay).await;
        while !self.stop.is_stopped() {
            let r = check::probe(&b.check, addr, timeout).await;
            if let Ok(mut l) = self.last.lock() {
                l[self.backend][self.server] = Some(r.clone());
            }
            if let Some(t) = health.on_result(r.clone()) {
                self.transition(t, &r);
            }
            glommio::timer::sleep(health.next_delay()).await;
        }
    }

    fn transition(&self, t: Transition, r: &CheckResult) {
        let b = &self.config.backends[self.backend];
        let up = t == Transition::WentUp;
        self.states.borrow_mut()[self.backend][self.server] = up;
        let states = self.states.borrow();
        let (active, backup) =
            b.servers
                .iter()
                .zip(&states[self.backend])
                .fold((0, 0), |(a, k), (s, &u)| {
                    if !u {
                        (a, k)
                    } else if s.backup {
                        (a, k + 1)
                    } else {
                        (a + 1, k)
                    }
                });
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
        let ev = ServerEvent {
            backend: self.backend,
            server: self.server,
            state: if up {
                ServerState::Up
            } else {
                ServerState::Down
            },
            weight: None,
        };
        for inbox in &self.shared.inboxes {
            inbox.send(ShardMsg::Server(ev.clone()));
        }
    }
}
